import { isUnusableExternal, parseIpv4 } from '../ipv4';
import { DEFAULT_TIMEOUTS, type MapperTimeouts } from '../retry';
import { isPort, PortMapError, type PortMapper, type PortMapping } from '../types';
import { exchange } from '../udp-exchange';
import {
  encodeExternalAddressRequest,
  encodeMapRequest,
  NATPMP_PORT,
  NATPMP_RESULTS,
  parseExternalAddressResponse,
  parseMapResponse,
} from './natpmp-codec';

// NAT-PMP client for one gateway: the external address comes from a separate request, the port from
// the mapping request; a lifetime of 0 deletes (RFC 6886 §3.4).

export class NatPmpMapper implements PortMapper {
  readonly protocol = 'natpmp' as const;

  constructor(
    private readonly gateway: string,
    private readonly timeouts: MapperTimeouts = DEFAULT_TIMEOUTS,
    private readonly port = NATPMP_PORT,
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
    return this.request(internalPort, internalPort, lifetimeSeconds);
  }

  renew(mapping: PortMapping): Promise<PortMapping> {
    return this.request(mapping.internalPort, mapping.externalPort, mapping.lifetimeSeconds);
  }

  async unmap(mapping: PortMapping): Promise<void> {
    const response = await this.send(encodeMapRequest(mapping.internalPort, 0, 0), parseMapResponse);
    if (response.kind === 'failure') throw this.refused(response.resultCode);
  }

  private async request(internalPort: number, suggested: number, lifetime: number): Promise<PortMapping> {
    if (!isPort(internalPort) || !Number.isInteger(lifetime) || lifetime < 1 || lifetime > 0xffffffff) {
      throw new PortMapError(this.protocol, 'invalid port or lifetime');
    }
    const externalIp = await this.externalIp();
    const response = await this.send(encodeMapRequest(internalPort, suggested, lifetime), parseMapResponse);
    if (response.kind === 'failure') throw this.refused(response.resultCode);
    if (response.internalPort !== internalPort)
      throw new PortMapError(this.protocol, 'answer for another port');
    if (!isPort(response.externalPort) || response.lifetime === 0) {
      throw new PortMapError(this.protocol, 'gateway granted no usable mapping');
    }
    return {
      protocol: this.protocol,
      internalPort,
      externalIp,
      externalPort: response.externalPort,
      lifetimeSeconds: response.lifetime,
      expiresAt: Date.now() + response.lifetime * 1000,
    };
  }

  private async externalIp(): Promise<string> {
    const response = await this.send(encodeExternalAddressRequest(), parseExternalAddressResponse);
    if (response.kind === 'failure') throw this.refused(response.resultCode);
    if (isUnusableExternal(parseIpv4(response.externalIp)!)) {
      throw new PortMapError(this.protocol, `unusable external address ${response.externalIp}`);
    }
    return response.externalIp;
  }

  private async send<T>(
    request: Uint8Array,
    parse: (m: Uint8Array) => { ok: true; value: T } | { ok: false; error: string },
  ): Promise<T> {
    const answer = await exchange({
      host: this.gateway,
      port: this.port,
      request,
      waitsMs: this.timeouts.udpWaitsMs,
      accept: (message) => {
        const result = parse(message);
        return result.ok ? result.value : undefined;
      },
    });
    if (answer === undefined) throw new PortMapError(this.protocol, 'no valid answer from the gateway');
    return answer;
  }

  private refused(code: number): PortMapError {
    return new PortMapError(this.protocol, `refused: ${NATPMP_RESULTS[code] ?? `result ${code}`}`, code);
  }
}
