import type { DeviceInfo } from '@trellis/proto';
import { useState } from 'react';
import { DeviceEditor } from './device-editor';

export interface DeviceRowProps {
  device: DeviceInfo;
  admin: boolean;
  editing: boolean;
  columns: number;
  onEdit(on: boolean): void;
  onRemove(): void;
  onApprove(): void;
}

/** What the status column says: a device waiting for approval is neither online nor offline yet. */
function status(d: DeviceInfo): { text: string; className: string } {
  if (!d.approved) return { text: 'awaiting approval', className: 'pending' };
  return d.online ? { text: 'online', className: 'online' } : { text: 'offline', className: 'offline' };
}

/** One device in the list; admins get Edit, Remove (which asks once more) and, while it waits, Approve. */
export function DeviceRow({
  device: d,
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
  return (
    <tr className="device-row" data-device={d.name}>
      <td>
        <strong>{d.name}</strong>{' '}
        <a className="sub" href={`/topology?device=${d.id}`} aria-label={`paths of ${d.name}`}>
          paths
        </a>
        <div className="sub">{d.dnsName}</div>
      </td>
      <td>{d.address}</td>
      <td>{d.user ?? '—'}</td>
      <td>{d.tags.join(', ') || '—'}</td>
      <td>{d.os}</td>
      <td className={status(d).className}>{status(d).text}</td>
      <td>{d.lastSeen ? new Date(d.lastSeen).toLocaleString() : 'never'}</td>
      {admin && (
        <td>
          {!d.approved && (
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
