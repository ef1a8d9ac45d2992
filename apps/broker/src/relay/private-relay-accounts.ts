import type { Logger } from 'pino';
import type { RelayTokensService } from '../services/relay-tokens.service';
import type { RelaysService } from '../services/relays.service';
import type { RelayRegistry } from './relay-registry';

/** How often other instances' registrations and revocations are picked up. */
export const PRIVATE_RELAY_REFRESH_MS = 30_000;

/**
 * Keeps the registry's view of which accounts have private relays in step with the database: read
 * before the broker serves anyone, after every revocation here, and periodically (other instances).
 * Returns the function that stops it.
 */
export async function trackPrivateRelayAccounts(
  registry: RelayRegistry,
  services: { relays: RelaysService; relayTokens: RelayTokensService },
  logger: Logger,
  intervalMs = PRIVATE_RELAY_REFRESH_MS,
): Promise<() => void> {
  const refresh = () =>
    services.relays
      .accountsWithPrivateRelays()
      .then((accounts) => registry.setPrivateAccounts(accounts))
      .catch((err: Error) => logger.warn({ err: err.message }, 'could not read the private relay accounts'));
  await refresh();
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  const unsubscribe = services.relayTokens.onRevoked(() => void refresh());
  return () => {
    clearInterval(timer);
    unsubscribe();
  };
}
