import type { AdminRequest } from '@trellis/proto';
import { CLI_ACTOR } from '../audit/audit-events';
import { badRequest } from '../domain/errors';
import { OPERATOR } from '../policy/tag-rules';
import type { Services } from '../services/services';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Runs one admin request against the domain services; the same code serves the socket and direct DB.
 * Every change is recorded in the audit log as made by the CLI (CLI_ACTOR).
 */
export async function executeAdmin(services: Services, req: AdminRequest): Promise<unknown> {
  switch (req.op) {
    case 'accounts.create':
      return services.accounts.create(req.name, req.ownerEmail, req.password, CLI_ACTOR);
    case 'accounts.list':
      return services.accounts.list();
    case 'accounts.dns':
      return services.accounts.setDnsMeshOnly(req.account, req.meshOnly, CLI_ACTOR);
    case 'accounts.resetOwner': {
      const account = await services.accounts.byName(req.account);
      return services.users.resetOwner(account.id, req.password, CLI_ACTOR);
    }
    case 'users.create': {
      const account = await services.accounts.byName(req.account);
      return services.users.create(account.id, req.email, req.role, req.password, CLI_ACTOR);
    }
    case 'setupKeys.create': {
      const account = await services.accounts.byName(req.account);
      const opts = {
        name: req.name,
        reusable: req.reusable,
        expiresInSeconds: req.expiresInSeconds,
        usageLimit: req.usageLimit,
        ...(req.tags ? { tags: req.tags } : {}),
        ...(req.cidr ? { cidr: req.cidr } : {}),
      };
      return services.setupKeys.create(account.id, opts, { ...OPERATOR, userId: null }, CLI_ACTOR);
    }
    case 'setupKeys.list': {
      const account = await services.accounts.byName(req.account);
      return services.setupKeys.list(account.id);
    }
    case 'setupKeys.revoke': {
      const account = await services.accounts.byName(req.account);
      if (!UUID_RE.test(req.id)) throw badRequest('setup key id must be a UUID');
      return services.setupKeys.revoke(account.id, req.id.toLowerCase(), CLI_ACTOR);
    }
    case 'devices.list': {
      const account = await services.accounts.byName(req.account);
      return services.devices.list(account.id, account.name);
    }
    case 'devices.remove': {
      const account = await services.accounts.byName(req.account);
      return services.devices.remove(account.id, account.name, req.device, CLI_ACTOR);
    }
    case 'devices.tag': {
      const account = await services.accounts.byName(req.account);
      // The routes its tags approve follow in the same transaction.
      return services.routes.setTags(account.id, account.name, req.device, req.tags, OPERATOR, CLI_ACTOR);
    }
    case 'devices.rename': {
      const account = await services.accounts.byName(req.account);
      return services.devices.rename(account.id, account.name, req.device, req.name, CLI_ACTOR);
    }
    case 'devices.addVirtual': {
      const account = await services.accounts.byName(req.account);
      return services.virtualDevices.create(account, OPERATOR, req.device, CLI_ACTOR);
    }
    case 'routes.list': {
      const account = await services.accounts.byName(req.account);
      return services.routes.list(account.id);
    }
    case 'routes.approve':
    case 'routes.unapprove': {
      const account = await services.accounts.byName(req.account);
      const change = req.op === 'routes.approve' ? { add: req.prefixes } : { remove: req.prefixes };
      return services.routes.changeApproved(account.id, account.name, req.device, change, CLI_ACTOR);
    }
    case 'devices.rekey': {
      const account = await services.accounts.byName(req.account);
      return services.devices.rekey(account.id, account.name, req.device, req.publicKey, CLI_ACTOR);
    }
    case 'policy.get': {
      const account = await services.accounts.byName(req.account);
      return req.version === undefined
        ? services.policy.get(account.id)
        : services.policy.version(account.id, req.version);
    }
    case 'policy.check':
      return services.policy.check((await services.accounts.byName(req.account)).id, req.text);
    case 'policy.plan':
      return services.policy.plan((await services.accounts.byName(req.account)).id, req.text);
    case 'policy.apply':
      return services.policy.apply(
        (await services.accounts.byName(req.account)).id,
        req.text,
        'cli',
        null,
        CLI_ACTOR,
      );
    case 'policy.history':
      return services.policy.history((await services.accounts.byName(req.account)).id);
    case 'policy.rollback':
      return services.policy.rollback(
        (await services.accounts.byName(req.account)).id,
        req.version,
        'cli',
        CLI_ACTOR,
      );
    case 'policy.explain':
      return services.policy.explain((await services.accounts.byName(req.account)).id, req.src, req.dst);
    case 'relayTokens.create': {
      const account = req.account === undefined ? null : await services.accounts.byName(req.account);
      return services.relayTokens.create(account?.id ?? null, req.name, CLI_ACTOR);
    }
    case 'relayTokens.list': {
      const account = req.account === undefined ? undefined : await services.accounts.byName(req.account);
      return services.relayTokens.list(account?.id);
    }
    case 'relayTokens.revoke':
      if (!UUID_RE.test(req.id)) throw badRequest('relay token id must be a UUID');
      return services.relayTokens.revoke(req.id.toLowerCase(), undefined, CLI_ACTOR);
    case 'relays.list':
      return services.relays.list();
    case 'instances.list':
      return services.instances.list();
  }
}
