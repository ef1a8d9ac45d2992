import type { ReflectorInfo } from '@trellis/proto';
import { PathOwnedEndpoints } from '../path';
import type { EndpointSelector } from '../wireguard/endpoint-selector';

/**
 * Endpoints for the config diff once the PathManager runs: a reflector peer always points at the
 * reflector (its handshakes are what the reflector observes); every mesh peer's endpoint belongs to
 * the path logic, so the diff never sets one.
 */
export class ReflectorEndpoints implements EndpointSelector {
  private readonly paths = new PathOwnedEndpoints();
  private reflectors = new Map<string, string>();

  setReflectors(reflectors: readonly ReflectorInfo[]): void {
    this.reflectors = new Map(reflectors.map((r) => [r.publicKey, r.endpoint]));
  }

  select(publicKey: string, _candidates: readonly string[], current: string | null): string | null {
    const reflector = this.reflectors.get(publicKey);
    if (reflector !== undefined) return reflector === current ? null : reflector;
    return this.paths.select();
  }
}
