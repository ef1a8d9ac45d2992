import { generateKeyPair, signKeyRotation } from '@trellis/crypto';
import {
  API_PATHS,
  type AuditAction,
  type AuditEventInfo,
  AuditPage,
  PROTOCOL_VERSION,
} from '@trellis/proto';
import { executeAdmin } from '../../src/admin/admin-operations';
import { auditEvents } from '../../src/db/schema';
import { type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';
import { TestRelay } from '../support/test-relay';

jest.setTimeout(120_000);

const POLICY = `{
  "tagOwners": { "tag:web": [] },
  "rules": [{ "src": ["*"], "dst": ["*"], "ports": ["icmp"] }]
}
`;

describe('audit log (pglite)', () => {
  let backend: Backend;
  let t: TestBroker;
  let other: { token: string; setupKey: string; accountId: string };
  let memberToken: string;
  /** Every secret handed out or typed in this test: none may appear in any event. */
  const secrets: string[] = [];
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { heartbeatIntervalMs: 500 });
    other = await t.addAccount('other');
    memberToken = await t.addMember('member@default.test');
    const boot = t.broker.bootstrap!;
    secrets.push(boot.ownerPassword, boot.setupKey, t.ownerToken, memberToken, other.token, other.setupKey);
    secrets.push('pw-owner-1234', 'member-pass-1');
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await t?.close();
    await backend?.dispose();
  });

  async function page(token: string, query: Record<string, string | number> = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
    const res = await t.api('GET', `${API_PATHS.audit}?${qs}`, { token });
    expect(res.status).toBe(200);
    return AuditPage.parse(res.json);
  }

  /** The one event of `action` (on the target named `name`) in the default account. */
  async function only(action: AuditAction, name?: string): Promise<AuditEventInfo> {
    const { events } = await page(t.ownerToken, { action, limit: 200 });
    const found = events.filter((e) => e.action === action && (name === undefined || e.target.name === name));
    expect(found).toHaveLength(1);
    return found[0]!;
  }

  const owner = () => ({ kind: 'user', email: t.broker.bootstrap!.ownerEmail, address: '127.0.0.1' });
  const cliActor = { kind: 'cli', userId: null, email: null, address: null };

  it('records each kind of change made over HTTP once, with who, from where and the target', async () => {
    // Sign-in: the fixture's own; a failed one with the address and without the password.
    expect((await only('user.signed-in', t.broker.bootstrap!.ownerEmail)).actor).toMatchObject(owner());
    const wrong = 'not-the-password-42';
    secrets.push(wrong);
    const failed = await t.api('POST', API_PATHS.login, {
      body: { email: t.broker.bootstrap!.ownerEmail, password: wrong },
    });
    expect(failed.status).toBe(401);
    const failure = await only('user.sign-in-failed');
    expect(failure).toMatchObject({ actor: { ...owner(), userId: null }, target: { kind: 'user' } });

    const key = await t.api('POST', API_PATHS.setupKeys, {
      token: t.ownerToken,
      body: { name: 'audit-key', reusable: true },
    });
    expect(key.status).toBe(201);
    secrets.push(key.json.key);
    const created = await only('setup-key.created', 'audit-key');
    expect(created).toMatchObject({
      actor: owner(),
      target: { kind: 'setup-key', id: key.json.setupKey.id },
      details: { prefix: key.json.setupKey.prefix, reusable: true },
    });

    const d = t.device();
    devices.push(d);
    await d.enroll(key.json.key, { hostname: 'audited' });
    secrets.push(d.keys.privateKey);
    expect(await only('device.enrolled', 'audited')).toMatchObject({
      actor: { kind: 'device', address: '127.0.0.1' },
      target: { kind: 'device', id: d.id },
      details: { via: 'setup-key', setupKey: { name: 'audit-key' }, reenrolled: false },
    });

    const renamed = await t.api('PUT', `${API_PATHS.devices}/${d.id}/name`, {
      token: t.ownerToken,
      body: { name: 'audited-2' },
    });
    expect(renamed.status).toBe(200);
    expect(await only('device.renamed')).toMatchObject({
      actor: owner(),
      target: { id: d.id, name: 'audited-2' },
      details: { from: 'audited', to: 'audited-2' },
    });

    const applied = await t.api('PUT', API_PATHS.policy, { token: t.ownerToken, body: { text: POLICY } });
    expect(applied.status).toBe(200);
    const version = applied.json.version as number;
    expect(await only('policy.applied', `version ${version}`)).toMatchObject({
      actor: owner(),
      target: { kind: 'policy', id: String(version) },
      details: { version },
    });

    const tagged = await t.api('PUT', `${API_PATHS.devices}/${d.id}/tags`, {
      token: t.ownerToken,
      body: { tags: ['tag:web'] },
    });
    expect(tagged.status).toBe(200);
    expect(await only('device.tagged')).toMatchObject({
      actor: owner(),
      details: { from: [], to: ['tag:web'] },
    });

    const edited = await t.api('PUT', API_PATHS.policy, {
      token: t.ownerToken,
      body: { text: `// edited\n${POLICY}` },
    });
    expect(edited.status).toBe(200);
    const rolledBack = await t.api('POST', `${API_PATHS.policy}/rollback`, {
      token: t.ownerToken,
      body: { version },
    });
    expect(rolledBack.status).toBe(200);
    expect(await only('policy.rolled-back')).toMatchObject({
      actor: owner(),
      details: { version: version + 2, restored: version },
    });

    // The device rotates its own key over its control connection.
    await d.connect();
    const next = generateKeyPair();
    secrets.push(next.privateKey);
    const previousKey = d.keys.publicKey;
    d.send({
      type: 'rotate-key',
      newKey: next.publicKey,
      signature: signKeyRotation(d.keys.privateKey, {
        deviceId: d.id,
        address: d.enrollment!.address,
        previousKey,
        newKey: next.publicKey,
      }),
    });
    await d.waitFor((m) => m.type === 'key-rotated');
    expect(await only('device.key-rotated')).toMatchObject({
      actor: { kind: 'device', address: '127.0.0.1' },
      target: { id: d.id },
      details: { previousKey, newKey: next.publicKey },
    });
    d.close();

    const revoked = await t.api('DELETE', `${API_PATHS.setupKeys}/${key.json.setupKey.id}`, {
      token: t.ownerToken,
    });
    expect(revoked.status).toBe(200);
    expect(await only('setup-key.revoked', 'audit-key')).toMatchObject({ actor: owner() });
    // Revoking again changes nothing, and records nothing.
    await t.api('DELETE', `${API_PATHS.setupKeys}/${key.json.setupKey.id}`, { token: t.ownerToken });
    await only('setup-key.revoked', 'audit-key');

    const removed = await t.api('DELETE', `${API_PATHS.devices}/${d.id}`, { token: t.ownerToken });
    expect(removed.status).toBe(200);
    expect(await only('device.removed', 'audited-2')).toMatchObject({ actor: owner() });
  });

  it('records relay tokens, relay registration and device sign-in decisions', async () => {
    const token = await t.api('POST', API_PATHS.relayTokens, { token: t.ownerToken, body: { name: 'home' } });
    expect(token.status).toBe(201);
    secrets.push(token.json.token);
    expect(await only('relay-token.created', 'home')).toMatchObject({
      actor: owner(),
      details: { prefix: token.json.relayToken.prefix, shared: false },
    });
    const relay = new TestRelay(t.broker.url, t.broker.certFile, token.json.token, 'relay-audit');
    await relay.connect();
    const registered = await only('relay.registered', 'relay-audit');
    expect(registered.actor).toMatchObject({ kind: 'relay' });
    expect(registered.actor.address).toMatch(/^127\.0\.0\.1:\d+$/);
    relay.close();
    // A second hello of the same relay is a reconnect, not a registration.
    const again = new TestRelay(t.broker.url, t.broker.certFile, token.json.token, 'relay-audit');
    await again.connect();
    again.close();
    await only('relay.registered', 'relay-audit');
    const gone = await t.api('DELETE', `${API_PATHS.relayTokens}/${token.json.relayToken.id}`, {
      token: t.ownerToken,
    });
    expect(gone.status).toBe(200);
    expect(await only('relay-token.revoked', 'home')).toMatchObject({ actor: owner() });

    const signIn = async (hostname: string) => {
      const d = t.device();
      const res = await t.api('POST', API_PATHS.deviceAuth, {
        body: { protocolVersion: PROTOCOL_VERSION, publicKey: d.keys.publicKey, hostname, os: 'linux 6.1' },
      });
      expect(res.status).toBe(200);
      secrets.push(res.json.deviceCode, res.json.userCode);
      return res.json.userCode as string;
    };
    for (const [hostname, approve] of [
      ['approved-laptop', true],
      ['denied-laptop', false],
    ] as const) {
      const decided = await t.api('POST', API_PATHS.deviceAuthRequests, {
        token: t.ownerToken,
        body: { userCode: await signIn(hostname), approve },
      });
      expect(decided.status).toBe(200);
    }
    expect(await only('device-authorization.approved', 'approved-laptop')).toMatchObject({ actor: owner() });
    expect(await only('device.enrolled', 'approved-laptop')).toMatchObject({
      actor: owner(),
      details: { via: 'sign-in', approvedBy: t.broker.bootstrap!.ownerEmail },
    });
    expect(await only('device-authorization.denied', 'denied-laptop')).toMatchObject({
      actor: owner(),
      details: { hostname: 'denied-laptop', requestedFrom: expect.stringContaining('127.0.0.1') },
    });
  });

  it('records the CLI as the actor of admin operations, and account-level changes in their account', async () => {
    const services = t.broker.services;
    const created = (await executeAdmin(services, {
      op: 'accounts.create',
      name: 'third',
      ownerEmail: 'owner@third.test',
      password: 'third-pass-123',
    })) as { account: { id: string } };
    secrets.push('third-pass-123');
    const third = await services.audit.page(created.account.id, { limit: 50 });
    expect(third.events.map((e) => e.action)).toEqual(['account.created']);
    expect(third.events[0]).toMatchObject({ actor: cliActor, target: { kind: 'account', name: 'third' } });

    await executeAdmin(services, {
      op: 'users.create',
      account: 'default',
      email: 'new@default.test',
      role: 'admin',
      password: 'new-user-pass-1',
    });
    secrets.push('new-user-pass-1');
    expect(await only('user.created', 'new@default.test')).toMatchObject({
      actor: cliActor,
      details: { role: 'admin' },
    });

    await executeAdmin(services, { op: 'accounts.dns', account: 'default', meshOnly: true });
    expect(await only('account.dns-changed')).toMatchObject({ actor: cliActor, details: { meshOnly: true } });

    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'cli-rekeyed' });
    const fresh = generateKeyPair();
    await executeAdmin(services, {
      op: 'devices.rekey',
      account: 'default',
      device: 'cli-rekeyed',
      publicKey: fresh.publicKey,
    });
    expect(await only('device.rekeyed', 'cli-rekeyed')).toMatchObject({
      actor: cliActor,
      details: { previousKey: d.keys.publicKey, newKey: fresh.publicKey },
    });

    const reset = (await executeAdmin(services, { op: 'accounts.resetOwner', account: 'other' })) as {
      generatedPassword: string;
    };
    secrets.push(reset.generatedPassword);
    // The reset ended the other owner's sessions: sign in again with the new password.
    const again = await t.api('POST', API_PATHS.login, {
      body: { email: 'owner@other.test', password: reset.generatedPassword },
    });
    expect(again.status).toBe(200);
    other.token = again.json.token;
    secrets.push(other.token);
    const otherLog = await services.audit.page(other.accountId, { limit: 50, action: 'user.owner' });
    expect(otherLog.events).toHaveLength(1);
    expect(otherLog.events[0]).toMatchObject({ actor: cliActor, details: { passwordGenerated: true } });
  });

  it('a failed change records nothing', async () => {
    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'taken' });
    const e = t.device();
    await e.enroll(t.setupKey, { hostname: 'taker' });
    const before = (await page(t.ownerToken, { action: 'device.renamed' })).events.length;
    const clash = await t.api('PUT', `${API_PATHS.devices}/${e.id}/name`, {
      token: t.ownerToken,
      body: { name: 'taken' },
    });
    expect(clash.status).toBe(409);
    expect((await page(t.ownerToken, { action: 'device.renamed' })).events).toHaveLength(before);
  });

  it('members get 403; an admin sees only their own account; sign out everywhere is recorded', async () => {
    const denied = await t.api('GET', API_PATHS.audit, { token: memberToken });
    expect(denied.status).toBe(403);
    const theirs = await page(other.token, { limit: 200 });
    expect(theirs.events.length).toBeGreaterThan(0);
    const ours = await page(t.ownerToken, { limit: 200 });
    const ourIds = new Set(ours.events.map((e) => e.id));
    expect(theirs.events.some((e) => ourIds.has(e.id))).toBe(false);
    // Nothing in the other account's log names anything of ours.
    expect(JSON.stringify(theirs)).not.toContain('default.test');
    expect(JSON.stringify(theirs)).not.toContain('audited');
    const out = await t.api('DELETE', API_PATHS.sessions, { token: memberToken });
    expect(out.status).toBe(200);
    expect(await only('user.signed-out-everywhere', 'member@default.test')).toMatchObject({
      actor: { kind: 'user', email: 'member@default.test', address: '127.0.0.1' },
      details: { sessionsEnded: 1 },
    });
    expect((await t.api('GET', `${API_PATHS.audit}?limit=201`, { token: t.ownerToken })).status).toBe(400);
  });

  it('filters by action prefix and text, and pages stably while new events arrive', async () => {
    const devicesOnly = await page(t.ownerToken, { action: 'device.', limit: 200 });
    expect(devicesOnly.events.length).toBeGreaterThan(3);
    expect(devicesOnly.events.every((e) => e.action.startsWith('device.'))).toBe(true);
    const byText = await page(t.ownerToken, { q: 'AUDIT-KEY', limit: 200 });
    expect(byText.events.map((e) => e.action).sort()).toEqual(['setup-key.created', 'setup-key.revoked']);

    const all = await page(t.ownerToken, { limit: 200 });
    const ids = all.events.map((e) => e.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    const seen: number[] = [];
    let before: number | undefined;
    for (let i = 0; ; i++) {
      const p = await page(t.ownerToken, before === undefined ? { limit: 3 } : { limit: 3, before });
      seen.push(...p.events.map((e) => e.id));
      // New events arrive between pages: they are newer than every page already read.
      await t.api('PUT', `${API_PATHS.devices}/taker/name`, {
        token: t.ownerToken,
        body: { name: `taker-${i}` },
      });
      if (p.next === null) break;
      before = p.next;
    }
    expect(seen).toEqual(ids);
  });

  it('no secret appears in any event', async () => {
    const rows = await t.broker.services.db.select().from(auditEvents);
    expect(rows.length).toBeGreaterThan(20);
    const text = JSON.stringify(rows);
    for (const s of secrets) expect(text).not.toContain(s);
    expect(text).not.toMatch(/password"\s*:\s*"/i);
  });

  it('purges events older than the retention age', async () => {
    const services = t.broker.services;
    const count = async () => (await services.db.select({ id: auditEvents.id }).from(auditEvents)).length;
    const total = await count();
    expect(await services.audit.purgeExpired()).toBe(0);
    // A year and a day from now, every event so far is past the default age of 365 days.
    const later = new Date(Date.now() + 366 * 86_400_000);
    expect(await services.audit.purgeExpired(later)).toBe(total);
    expect(await count()).toBe(0);
  });
});

describe('audit log (postgres)', () => {
  let backend: Backend;
  let t: TestBroker;

  beforeAll(async () => {
    backend = await createBackend('postgres');
    t = await startTestBroker(backend);
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('records a rename with its actor and address, in the same transaction', async () => {
    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'pg-device' });
    const res = await t.api('PUT', `${API_PATHS.devices}/${d.id}/name`, {
      token: t.ownerToken,
      body: { name: 'pg-renamed' },
    });
    expect(res.status).toBe(200);
    const log = await t.api('GET', `${API_PATHS.audit}?action=device.`, { token: t.ownerToken });
    const events = AuditPage.parse(log.json).events;
    expect(events.map((e) => e.action)).toEqual(['device.renamed', 'device.enrolled']);
    expect(events[0]).toMatchObject({
      actor: { kind: 'user', email: t.broker.bootstrap!.ownerEmail, address: '127.0.0.1' },
      target: { kind: 'device', id: d.id, name: 'pg-renamed' },
    });
  });
});
