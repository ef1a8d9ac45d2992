import { randomBytes } from 'node:crypto';
import { isUnusableExternal, parseIpv4 } from '../ipv4';
import { DEFAULT_TIMEOUTS, type MapperTimeouts } from '../retry';
import { isPort, PortMapError, type PortMapper, type PortMapping } from '../types';
import { exchange, localAddressToward } from '../udp-exchange';
import {
  encodeAnnounceRequest,
  encodeMapRequest,
  OP_ANNOUNCE,
  PCP_PORT,
  PCP_RESULTS,
  parseAnnounceResponse,
  parseMapResponse,
} from './pcp-codec';

// PCP client for one gateway. Each mapping keeps the nonce it was created with: renewals and the
// delete must repeat it, or the server treats them as someone else's (RFC 6887 §11.1).

interface PcpMappingState {
  nonce: Uint8Array;
}

export class PcpMapper implements PortMapper {
  readonly protocol = 'pcp' as const;
  private readonly nonces = new WeakMap<PortMapping, PcpMappingState>();

  constructor(
    private readonly gateway: string,
    private readonly timeouts: MapperTimeouts = DEFAULT_TIMEOUTS,
    private readonly port = PCP_PORT,
  ) {}

  async probe(): Promise<boolean> {
    const clientIp = await localAddressToward(this.gateway, this.port);
    if (clientIp === undefined) return false;
    const answer = await exchange({
      host: this.gateway,
      port: this.port,
      request: encodeAnnounceRequest(clientIp),
      waitsMs: this.timeouts.udpWaitsMs,
      accept: (message) => {
        const result = parseAnnounceResponse(message);
        return result.ok && result.value.opcode === OP_ANNOUNCE ? result.value : undefined;
      },
    });
    return answer !== undefined && answer.resultCode === 0;
  }

  map(internalPort: number, lifetimeSeconds: number): Promise<PortMapping> {
    return this.request(randomBytes(12), internalPort, internalPort, lifetimeSeconds);
  }

  renew(mapping: PortMapping): Promise<PortMapping> {
    const state = this.nonces.get(mapping);
    if (!state) return Promise.reject(new PortMapError(this.protocol, 'not a mapping of this mapper'));
    return this.request(
      state.nonce,
      mapping.internalPort,
      mapping.externalPort,
      mapping.lifetimeSeconds,
      mapping,
    );
  }

  async unmap(mapping: PortMapping): Promise<void> {
    const state = this.nonces.get(mapping);
    if (!state) throw new PortMapError(this.protocol, 'not a mapping of this mapper');
    const response = await this.send(state.nonce, mapping.internalPort, 0, 0);
    if (response.resultCode !== 0) throw this.refused(response.resultCode);
  }

  private async request(
    nonce: Uint8Array,
    internalPort: number,
    suggestedPort: number,
    lifetime: number,
    previous?: PortMapping,
  ): Promise<PortMapping> {
    if (!isPort(internalPort) || !Number.isInteger(lifetime) || lifetime < 1 || lifetime > 0xffffffff) {
      throw new PortMapError(this.protocol, 'invalid port or lifetime');
    }
    const response = await this.send(nonce, internalPort, suggestedPort, lifetime, previous?.externalIp);
    if (response.resultCode !== 0) throw this.refused(response.resultCode);
    if (!isPort(response.externalPort) || response.lifetime === 0) {
      throw new PortMapError(this.protocol, 'gateway granted no usable mapping');
    }
    if (isUnusableExternal(parseIpv4(response.externalIp)!)) {
      throw new PortMapError(this.protocol, `unusable external address ${response.externalIp}`);
    }
    const mapping: PortMapping = {
      protocol: this.protocol,
      internalPort,
      externalIp: response.externalIp,
      externalPort: response.externalPort,
      lifetimeSeconds: response.lifetime,
      expiresAt: Date.now() + response.lifetime * 1000,
    };
    this.nonces.set(mapping, { nonce });
    return mapping;
  }

  private async send(
    nonce: Uint8Array,
    internalPort: number,
    suggestedPort: number,
    lifetime: number,
    suggestedIp?: string,
  ) {
    const clientIp = await localAddressToward(this.gateway, this.port);
    if (clientIp === undefined) throw new PortMapError(this.protocol, 'no route to the gateway');
    const answer = await exchange({
      host: this.gateway,
      port: this.port,
      request: encodeMapRequest({ clientIp, nonce, internalPort, suggestedPort, suggestedIp, lifetime }),
      waitsMs: this.timeouts.udpWaitsMs,
      accept: (message) => {
        const result = parseMapResponse(message, { nonce, internalPort });
        return result.ok ? result.value : undefined;
      },
    });
    if (answer === undefined) throw new PortMapError(this.protocol, 'no valid answer from the gateway');
    return answer;
  }

  private refused(code: number): PortMapError {
    return new PortMapError(this.protocol, `refused: ${PCP_RESULTS[code] ?? `result ${code}`}`, code);
  }
}
