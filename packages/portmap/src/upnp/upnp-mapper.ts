import { randomInt } from 'node:crypto';
import { isIpv4, isUnusableExternal, parseIpv4 } from '../ipv4';
import { DEFAULT_TIMEOUTS, type MapperTimeouts } from '../retry';
import { isPort, PortMapError, type PortMapper, type PortMapping } from '../types';
import { localAddressToward } from '../udp-exchange';
import { findWanService, type WanService } from './device-description';
import { httpRequest } from './http-fetch';
import { encodeAction, parseSoapAnswer } from './soap';
import { searchGateway } from './ssdp';

// UPnP-IGD client: SSDP finds the gateway's description, which names the WAN connection service;
// SOAP on its control URL reads the external address and adds or deletes the port mapping.

const CONFLICT_IN_MAPPING_ENTRY = 718;
const ONLY_PERMANENT_LEASES = 725;
const MAX_LEASE = 604800; // IGD:2 caps lease durations at one week
const DESCRIPTION = 'trellis';

export class UpnpMapper implements PortMapper {
  readonly protocol = 'upnp' as const;
  private service: WanService | undefined;

  constructor(
    private readonly gateway: string,
    private readonly timeouts: MapperTimeouts = DEFAULT_TIMEOUTS,
  ) {}

  async probe(): Promise<boolean> {
    try {
      await this.externalIp();
      return true;
    } catch {
      return false;
    }
  }

  async map(internalPort: number, lifetimeSeconds: number): Promise<PortMapping> {
    if (!isPort(internalPort)) throw new PortMapError(this.protocol, 'invalid port');
    let externalPort = internalPort;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.add(internalPort, externalPort, lifetimeSeconds);
      } catch (error) {
        const conflict = error instanceof PortMapError && error.code === CONFLICT_IN_MAPPING_ENTRY;
        if (!conflict || attempt >= 3) throw error;
        externalPort = randomInt(1024, 65536);
      }
    }
  }

  renew(mapping: PortMapping): Promise<PortMapping> {
    return this.add(mapping.internalPort, mapping.externalPort, mapping.lifetimeSeconds || MAX_LEASE);
  }

  async unmap(mapping: PortMapping): Promise<void> {
    await this.call('DeletePortMapping', [
      ['NewRemoteHost', ''],
      ['NewExternalPort', String(mapping.externalPort)],
      ['NewProtocol', 'UDP'],
    ]);
  }

  private async add(internalPort: number, externalPort: number, lifetime: number): Promise<PortMapping> {
    if (!Number.isInteger(lifetime) || lifetime < 1)
      throw new PortMapError(this.protocol, 'invalid lifetime');
    const internalClient = await localAddressToward(this.gateway);
    if (internalClient === undefined) throw new PortMapError(this.protocol, 'no route to the gateway');
    const externalIp = await this.externalIp();
    const args = (lease: number): Array<[string, string]> => [
      ['NewRemoteHost', ''],
      ['NewExternalPort', String(externalPort)],
      ['NewProtocol', 'UDP'],
      ['NewInternalPort', String(internalPort)],
      ['NewInternalClient', internalClient],
      ['NewEnabled', '1'],
      ['NewPortMappingDescription', DESCRIPTION],
      ['NewLeaseDuration', String(lease)],
    ];
    let lease = Math.min(lifetime, MAX_LEASE);
    try {
      await this.call('AddPortMapping', args(lease));
    } catch (error) {
      if (!(error instanceof PortMapError && error.code === ONLY_PERMANENT_LEASES)) throw error;
      lease = 0; // the owner removes it on stop
      await this.call('AddPortMapping', args(lease));
    }
    return {
      protocol: this.protocol,
      internalPort,
      externalIp,
      externalPort,
      lifetimeSeconds: lease,
      expiresAt: lease === 0 ? Number.POSITIVE_INFINITY : Date.now() + lease * 1000,
    };
  }

  private async externalIp(): Promise<string> {
    const values = await this.call('GetExternalIPAddress', []);
    const ip = values.NewExternalIPAddress?.trim() ?? '';
    if (!isIpv4(ip) || isUnusableExternal(parseIpv4(ip)!)) {
      throw new PortMapError(this.protocol, `unusable external address "${ip.slice(0, 40)}"`);
    }
    return ip;
  }

  private async call(action: string, args: Array<[string, string]>): Promise<Record<string, string>> {
    const service = await this.discover();
    const response = await httpRequest(service.controlUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'text/xml; charset="utf-8"',
        SOAPAction: `"${service.serviceType}#${action}"`,
      },
      body: encodeAction(service.serviceType, action, args),
      timeoutMs: this.timeouts.httpTimeoutMs,
    });
    if (!response) {
      this.service = undefined; // the gateway may have restarted elsewhere: discover again next time
      throw new PortMapError(this.protocol, `${action}: no answer`);
    }
    const answer = parseSoapAnswer(response.status, response.body, action);
    if (!answer.ok) throw new PortMapError(this.protocol, `${action}: ${answer.error}`);
    if (answer.value.kind === 'fault') {
      const { errorCode, description } = answer.value;
      throw new PortMapError(this.protocol, `${action}: error ${errorCode} ${description}`, errorCode);
    }
    return answer.value.values;
  }

  private async discover(): Promise<WanService> {
    if (this.service) return this.service;
    const localAddress = await localAddressToward(this.gateway);
    if (localAddress === undefined) throw new PortMapError(this.protocol, 'no route to the gateway');
    const found = await searchGateway(this.gateway, localAddress, this.timeouts.udpWaitsMs);
    if (!found) throw new PortMapError(this.protocol, 'no SSDP answer from the gateway');
    const description = await httpRequest(found.location, {
      method: 'GET',
      timeoutMs: this.timeouts.httpTimeoutMs,
    });
    if (description?.status !== 200) {
      throw new PortMapError(this.protocol, 'device description unavailable');
    }
    const service = findWanService(description.body, found.location);
    if (!service.ok) throw new PortMapError(this.protocol, service.error);
    this.service = service.value;
    return service.value;
  }
}
