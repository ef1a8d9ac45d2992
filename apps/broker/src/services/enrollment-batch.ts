import type { Actor } from '../audit/audit-events';
import { recordAudits } from '../audit/audit-log';
import type { AccountRow, DeviceRow } from '../db/schema';
import type { AddressScope } from '../domain/address-allocator';
import { DomainError } from '../domain/errors';
import { toDnsLabel } from '../domain/names';
import { addressScope, type Enrolled, type EnrollInput, enrollAgain, refusal } from './device-enrollment';
import { insertNewDevices } from './device-insert';
import type { BatchOutcome } from './enrollment-batcher';
import type { OverlayAddresses } from './overlay-addresses';
import {
  type CheckedKey,
  checkSetupKeys,
  type EnrolledKey,
  exhaustedOr,
  spendKeysAndTakeSerials,
  usesLeft,
} from './setup-key-use';
import type { Tx } from './tx';

/** One setup-key enrollment; `by` is the enrolling device (with its address) in the audit log. */
export interface EnrollRequest {
  input: EnrollInput;
  by: Actor;
}

/** A request let in: its key, and the device its public key has already (null: a new device). */
interface Admitted {
  index: number;
  request: EnrollRequest;
  checked: CheckedKey;
  existing: EnrolledKey | null;
}

/**
 * Within `tx`: enrolls a batch of devices with setup keys into one account, each as enrolling it
 * alone would (a failure is that request's outcome, never the others'), but with one pass over
 * them: the keys and devices read once, names and addresses picked together, one insert, one
 * audit insert, and the keys' uses spent with one serial per device in the last statement (the
 * only account-wide lock, held to the commit). The batch's account is that of its first valid key:
 * a request for another account is put back for that account's batch ('again', queue = its id),
 * as is a public key a request before it in the batch enrolls (it is a re-enrollment then).
 */
export async function enrollBatch(
  tx: Tx,
  requests: readonly EnrollRequest[],
  addresses: OverlayAddresses,
): Promise<BatchOutcome<Enrolled>[]> {
  const now = new Date();
  const { keys, enrolled: existing } = await checkSetupKeys(
    tx,
    [...new Set(requests.map((r) => r.input.setupKey))],
    [...new Set(requests.map((r) => r.input.publicKey))],
    now,
  );
  const outcomes: BatchOutcome<Enrolled>[] = [];
  const admitted: Admitted[] = [];
  const left = new Map<string, number>();
  const refusedByKey = new Map<string, number[]>();
  const claimed = new Set<string>();
  let account: AccountRow | undefined;
  for (const [index, request] of requests.entries()) {
    const { input } = request;
    const checked = keys.get(input.setupKey)!;
    if (checked instanceof DomainError) {
      outcomes[index] = { kind: 'failed', error: checked };
      continue;
    }
    account ??= checked.account;
    if (checked.account.id !== account.id) {
      outcomes[index] = { kind: 'again', queue: checked.account.id };
      continue;
    }
    if (claimed.has(input.publicKey)) {
      outcomes[index] = { kind: 'again' };
      continue;
    }
    claimed.add(input.publicKey);
    const found = existing.get(input.publicKey) ?? null;
    const refused = refusal(found, account.id, input.proven);
    if (refused) {
      outcomes[index] = { kind: 'failed', error: refused };
      continue;
    }
    const uses = left.get(checked.key.id) ?? usesLeft(checked.key);
    if (uses <= 0) {
      outcomes[index] = { kind: 'failed', error: exhaustedOr() };
      refusedByKey.set(checked.key.id, [...(refusedByKey.get(checked.key.id) ?? []), index]);
      continue;
    }
    left.set(checked.key.id, uses - 1);
    admitted.push({ index, request, checked, existing: found });
  }
  if (!account || admitted.length === 0) return outcomes;

  const rows = await placeDevices(tx, account.id, admitted, addresses);
  const placed = admitted.flatMap((a, i) => {
    const row = rows[i]!;
    if (row instanceof DomainError) {
      outcomes[a.index] = { kind: 'failed', error: row };
      // Its use is not spent: one refused for want of uses may have it, as one by one it would.
      for (const j of refusedByKey.get(a.checked.key.id) ?? []) outcomes[j] = { kind: 'again' };
      return [];
    }
    return [{ ...a, row }];
  });
  if (placed.length === 0) return outcomes;

  await recordAudits(
    tx,
    placed.map(({ request, checked: { key }, row, existing: found }) => ({
      actor: request.by,
      event: {
        action: 'device.enrolled',
        accountId: row.accountId,
        target: { kind: 'device', id: row.id, name: row.name },
        details: {
          via: 'setup-key',
          setupKey: { id: key.id, name: key.name, prefix: key.prefix },
          address: row.address,
          reenrolled: found !== null,
        },
      },
    })),
  );
  const uses = new Map<string, number>();
  for (const { checked } of placed) uses.set(checked.key.id, (uses.get(checked.key.id) ?? 0) + 1);
  const last = await spendKeysAndTakeSerials(tx, uses, account.id, now);
  for (const [i, { index, row, existing: found }] of placed.entries()) {
    outcomes[index] = {
      kind: 'done',
      value: {
        row,
        accountId: account.id,
        accountName: account.name,
        reenrolled: found !== null,
        serial: last - placed.length + 1 + i,
      },
    };
  }
  return outcomes;
}

/**
 * Each admitted request's device row: the same machine's kept (id, name, address) with what it
 * says now, or a new one (insertNewDevices). A DomainError fails that request alone.
 */
async function placeDevices(
  tx: Tx,
  accountId: string,
  admitted: readonly Admitted[],
  addresses: OverlayAddresses,
): Promise<Array<DeviceRow | DomainError>> {
  const out: Array<DeviceRow | DomainError> = [];
  const fresh: number[] = [];
  const scopes = new Map<string | null, AddressScope | DomainError>();
  for (const [i, { request, checked, existing }] of admitted.entries()) {
    const { input } = request;
    if (existing) {
      // Removed or re-keyed meanwhile: the batch starts over (RetryEnrollment).
      out[i] = await enrollAgain(tx, existing.id, input);
      continue;
    }
    const { cidr } = checked.key;
    if (!scopes.has(cidr)) scopes.set(cidr, await addressScope(tx, accountId, cidr).catch(domainErrorOnly));
    const scope = scopes.get(cidr)!;
    if (scope instanceof DomainError) out[i] = scope;
    else fresh.push(i);
  }
  const rows = await insertNewDevices(
    tx,
    accountId,
    fresh.map((i) => {
      const { request, checked } = admitted[i]!;
      const { input } = request;
      // A tagged device is the tags' (a server, a camera), nobody's in particular: as in the policy.
      const owned = checked.key.tags.length === 0;
      return {
        base: toDnsLabel(input.name ?? input.hostname, 60),
        scope: scopes.get(checked.key.cidr) as AddressScope,
        fields: {
          hostname: input.hostname,
          os: input.os,
          publicKey: input.publicKey,
          endpoints: input.endpoints,
          tags: checked.key.tags,
          userEmail: owned ? checked.creatorEmail : null,
          // Only admins make setup keys: a key is an approval in advance.
          approved: true,
        },
      };
    }),
    addresses,
  );
  for (const [j, i] of fresh.entries()) out[i] = rows[j]!;
  return out;
}

function domainErrorOnly(err: unknown): DomainError {
  if (err instanceof DomainError) return err;
  throw err;
}
