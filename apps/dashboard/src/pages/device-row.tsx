import type { DeviceInfo } from '@trellis/proto';
import { useState } from 'react';
import { DeviceEditor } from './device-editor';
import { isVirtualDevice, viaText } from './virtual-device';

export interface DeviceRowProps {
  device: DeviceInfo;
  /** Device names by id, for a virtual device's gateway (null: not visible to this user). */
  gatewayNames: ReadonlyMap<string, string | null>;
  admin: boolean;
  editing: boolean;
  columns: number;
  onEdit(on: boolean): void;
  onRemove(): void;
  onApprove(): void;
}

/**
 * What the status column says: a device waiting for approval is neither online nor offline yet, and
 * a virtual device never connects itself (its gateway does), so it is neither either.
 */
function status(d: DeviceInfo): { text: string; className: string } {
  if (isVirtualDevice(d)) return { text: 'via gateway', className: 'via-gateway' };
  if (!d.approved) return { text: 'awaiting approval', className: 'pending' };
  return d.online ? { text: 'online', className: 'online' } : { text: 'offline', className: 'offline' };
}

/**
 * One device in the list; admins get Edit, Remove (which asks once more) and, while it waits,
 * Approve. A virtual device shows its badge, its gateway and LAN address where others show the system.
 */
export function DeviceRow({
  device: d,
  gatewayNames,
  admin,
  editing,
  columns,
  onEdit,
  onRemove,
  onApprove,
}: DeviceRowProps) {
  const [confirming, setConfirming] = useState(false);
  if (editing) {
    return (
      <tr className="device-edit" data-editing={d.name}>
        <td colSpan={columns}>
          <DeviceEditor device={d} onDone={() => onEdit(false)} />
        </td>
      </tr>
    );
  }
  const virtual = isVirtualDevice(d);
  const state = status(d);
  return (
    <tr className="device-row" data-device={d.name} data-virtual={virtual || undefined}>
      <td>
        <strong>{d.name}</strong>{' '}
        {virtual ? (
          <span className="badge">virtual</span>
        ) : (
          <a className="sub" href={`/topology?device=${d.id}`} aria-label={`paths of ${d.name}`}>
            paths
          </a>
        )}
        <div className="sub">{d.dnsName}</div>
      </td>
      <td>{d.address}</td>
      <td>{d.user ?? '—'}</td>
      <td>{d.tags.join(', ') || '—'}</td>
      {virtual ? (
        <td className="via" data-testid="via" title={viaText(d, gatewayNames)}>
          {viaText(d, gatewayNames)}
        </td>
      ) : (
        <td>{d.os}</td>
      )}
      <td className={state.className}>{state.text}</td>
      <td>{virtual ? '—' : d.lastSeen ? new Date(d.lastSeen).toLocaleString() : 'never'}</td>
      {admin && (
        <td>
          {!d.approved && !virtual && (
            <button type="button" className="primary" onClick={onApprove}>
              Approve
            </button>
          )}
          {confirming ? (
            <button type="button" className="danger" onClick={onRemove}>
              Remove {d.name} for good
            </button>
          ) : (
            <button type="button" onClick={() => setConfirming(true)}>
              Remove
            </button>
          )}
          <button type="button" onClick={() => onEdit(true)}>
            Edit
          </button>
        </td>
      )}
    </tr>
  );
}
