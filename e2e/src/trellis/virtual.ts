import { DeviceInfo } from '@trellis/proto';
import { LAB_ACCOUNT } from './access';
import { type BrokerRunner, parseJson } from './broker';

/**
 * Virtual devices (issue 14) as an admin registers them: a LAN host without an agent, behind a
 * gateway device, with its own mesh address and name.
 */

export interface VirtualDeviceSpec {
  name: string;
  /** Its address on the gateway's LAN. */
  lanAddress: string;
  /** The gateway device's name or id. */
  gateway: string;
  tags?: readonly string[];
}

/** `trellis-broker devices add-virtual NAME --lan ADDR --gateway GW [--tag T]… --json`: the new device. */
export async function addVirtualDevice(broker: BrokerRunner, spec: VirtualDeviceSpec): Promise<DeviceInfo> {
  const out = await broker.admin([
    ...['devices', 'add-virtual', spec.name, '--lan', spec.lanAddress, '--gateway', spec.gateway],
    ...(spec.tags ?? []).flatMap((t) => ['--tag', t]),
    ...['--data-dir', broker.dataDir, '--account', LAB_ACCOUNT, '--json'],
  ]);
  return parseJson(out, DeviceInfo, 'devices add-virtual --json');
}
