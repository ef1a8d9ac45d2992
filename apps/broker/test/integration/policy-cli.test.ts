import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_POLICY_TEXT } from '@trellis/policy';
import { ipv4InCidr, MAX_POLICY_BYTES } from '@trellis/proto';
import { runCli } from '../../src';
import { BACKENDS, type Backend, createBackend, tempDir } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker } from '../support/fixture';

jest.setTimeout(120_000);

/** The CLI in-process with standard input given and raw writes (`policy get`) captured apart. */
async function cliWith(args: string[], stdin?: string) {
  const out: string[] = [];
  const err: string[] = [];
  let raw = '';
  const code = await runCli(args, {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    write: (s) => {
      raw += s;
    },
    ...(stdin === undefined ? {} : { stdin: Readable.from([Buffer.from(stdin)]) }),
  });
  return { code, out: out.join('\n'), err: err.join('\n'), raw };
}

const COMMENTED = `// Only ssh for now.
{
  /* nobody owns tags yet */
  "tagOwners": {},
  "rules": [
    { "src": ["*"], "dst": ["*"], "ports": ["tcp:22"] }, // ssh
  ],
}
`;

const BAD = `{
  // two mistakes
  "rules": [
    { "src": ["*"], "dst": ["*"], "ports": ["tcp:0"] },
    { "src": ["*"], "dst": ["*"], "ports": ["udp:99999"] }
  ]
}
`;

/** Tags declared; every device may ping every other, nothing else. */
const BASE = `{
  "groups": { "group:ops": ["user:ops@default.test"] },
  "tagOwners": { "tag:db": ["group:ops"], "tag:web": [] },
  "cidrs": { "lab": "100.96.0.0/16" },
  "rules": [
    { "src": ["*"], "dst": ["*"], "ports": ["icmp"] }
  ]
}
`;

/** The laptop gets postgres on the databases; only the databases may still be pinged. */
const NEXT = `{
  "groups": { "group:ops": ["user:ops@default.test"] },
  "tagOwners": { "tag:db": ["group:ops"], "tag:web": [] },
  "cidrs": { "lab": "100.96.0.0/16" },
  "rules": [
    // postgres from the laptop
    { "src": ["laptop-1"], "dst": ["tag:db"], "ports": ["tcp:5432"] },
    { "src": ["*"], "dst": ["tag:db"], "ports": ["icmp"] }
  ],
  "tests": [{ "src": "laptop-1", "accept": ["db-1:5432", "db-2:icmp"], "deny": ["db-1:22"] }]
}
`;

describe.each(BACKENDS)('policy CLI on %s', (kind) => {
  let backend: Backend;
  let dir: string;
  const savedUrl = process.env.DATABASE_URL;

  beforeEach(async () => {
    backend = await createBackend(kind);
    dir = tempDir('trellis-policy-cli-');
    if (backend.databaseUrl) process.env.DATABASE_URL = backend.databaseUrl;
    else delete process.env.DATABASE_URL;
  });
  afterEach(async () => {
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
    await backend.dispose();
  });

  const file = (name: string, text: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('get, check, apply, history and rollback (on the database, then through a broker)', async () => {
    const dd = ['--data-dir', backend.dataDir];
    const acct = ['--account', 'acme', ...dd];
    expect((await cli(['accounts', 'create', 'acme', '--owner-email', 'boss@acme.test', ...dd])).code).toBe(
      0,
    );

    // A new account: the default allow-all policy, byte for byte.
    const fresh = await cliWith(['policy', 'get', ...acct]);
    expect(fresh).toMatchObject({ code: 0, raw: DEFAULT_POLICY_TEXT });
    expect(`${(await cli(['policy', 'get', ...acct])).out}\n`).toBe(DEFAULT_POLICY_TEXT);
    const freshJson = JSON.parse((await cli(['policy', 'get', ...acct, '--json'])).out);
    expect(freshJson).toMatchObject({ version: 0, text: DEFAULT_POLICY_TEXT, rollbackOf: null });
    expect((await cli(['policy', 'history', ...acct])).out).toMatch(/no policy applied yet/);

    // Errors located compiler-style, exit code 1; nothing applied.
    const bad = file('bad.jsonc', BAD);
    const checked = await cli(['policy', 'check', bad, ...acct]);
    expect(checked.code).toBe(1);
    const errorLines = checked.out.split('\n').filter((l) => l.includes(': error: '));
    expect(errorLines).toHaveLength(2);
    expect(errorLines[0]).toMatch(new RegExp(`^${bad}:4:\\d+: error: .*tcp:0`));
    expect(errorLines[1]).toMatch(new RegExp(`^${bad}:5:\\d+: error: .*`));
    expect(checked.out.split('\n').at(-1)).toBe('2 errors');
    const checkedJson = JSON.parse((await cli(['policy', 'check', bad, ...acct, '--json'])).out);
    expect(checkedJson).toMatchObject({ ok: false, errors: [{ line: 4 }, { line: 5 }] });
    const applyDirect = await cli(['policy', 'apply', bad, ...acct]);
    expect(applyDirect.code).toBe(1);
    expect(applyDirect.err.split('\n').slice(0, 2)).toEqual(errorLines);

    // The rest through a serving broker's admin socket (each direct run opens the database anew).
    const t = await startTestBroker(backend);
    try {
      const applyBad = await cli(['policy', 'apply', bad, ...acct]);
      expect(applyBad.code).toBe(1);
      const applyLines = applyBad.err.split('\n');
      expect(applyLines.slice(0, 2)).toEqual(errorLines);
      expect(applyLines.at(-1)).toBe('error: the policy is invalid (2 errors); nothing was applied');
      expect(JSON.parse((await cli(['policy', 'get', ...acct, '--json'])).out).version).toBe(0);

      // A valid policy with comments: applied, and read back exactly as written.
      const good = file('good.jsonc', COMMENTED);
      const okCheck = await cli(['policy', 'check', good, ...acct]);
      expect(okCheck).toMatchObject({ code: 0, out: 'ok: 0 tests passed' });
      const applied = await cli(['policy', 'apply', good, ...acct]);
      expect(applied).toMatchObject({ code: 0, out: 'applied version 1 (0 devices changed)' });
      expect((await cliWith(['policy', 'get', ...acct])).raw).toBe(COMMENTED);
      expect(JSON.parse((await cli(['policy', 'get', ...acct, '--json'])).out)).toMatchObject({
        version: 1,
        text: COMMENTED,
        appliedBy: 'cli',
        bytes: Buffer.byteLength(COMMENTED),
      });

      // From standard input, without a final newline: still verbatim.
      const piped = COMMENTED.replace('tcp:22', 'tcp:2222').trimEnd();
      expect((await cliWith(['policy', 'apply', '-', ...acct], piped)).code).toBe(0);
      expect((await cliWith(['policy', 'get', ...acct])).raw).toBe(piped);
      expect((await cliWith(['policy', 'get', '--version', '1', ...acct])).raw).toBe(COMMENTED);

      const history = await cli(['policy', 'history', ...acct]);
      const rows = history.out.split('\n');
      expect(rows[0]).toMatch(/^VERSION\s+APPLIED\s+BY\s+ROLLBACK OF\s+BYTES$/);
      expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual(['2', '1']);
      expect(rows[2]).toMatch(new RegExp(`^1\\s+\\S+\\s+cli\\s+-\\s+${Buffer.byteLength(COMMENTED)}$`));

      const rolled = await cli(['policy', 'rollback', '1', ...acct]);
      expect(rolled).toMatchObject({
        code: 0,
        out: 'rolled back to version 1, applied as version 3 (0 devices changed)',
      });
      expect((await cliWith(['policy', 'get', ...acct])).raw).toBe(COMMENTED);
      const after = JSON.parse((await cli(['policy', 'history', ...acct, '--json'])).out);
      expect(after[0]).toMatchObject({ version: 3, rollbackOf: 1, appliedBy: 'cli' });
      expect((await cli(['policy', 'history', ...acct])).out.split('\n')[1]).toMatch(
        /^3\s+\S+\s+cli\s+1\s+\d+$/,
      );

      expect(await cli(['policy', 'rollback', '9', ...acct])).toMatchObject({
        code: 1,
        err: 'error: no policy version 9 in this account',
      });
      expect((await cli(['policy', 'rollback', '0', ...acct])).code).toBe(1);
      expect((await cli(['policy', 'get', '--version', 'x', ...acct])).code).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('reports unreadable, empty, oversized and non-UTF-8 files on one line', async () => {
    const acct = ['--account', 'acme', '--data-dir', backend.dataDir];
    await cli([
      'accounts',
      'create',
      'acme',
      '--owner-email',
      'boss@acme.test',
      '--data-dir',
      backend.dataDir,
    ]);
    const missing = join(dir, 'missing.jsonc');
    expect(await cli(['policy', 'check', missing, ...acct])).toMatchObject({
      code: 1,
      err: `error: cannot read ${missing}: no such file`,
    });
    expect(await cli(['policy', 'apply', dir, ...acct])).toMatchObject({
      code: 1,
      err: `error: cannot read ${dir}: is a directory`,
    });
    const empty = file('empty.jsonc', '');
    expect(await cli(['policy', 'check', empty, ...acct])).toMatchObject({
      code: 1,
      err: `error: ${empty} is empty`,
    });
    const big = file('big.jsonc', `{}${' '.repeat(MAX_POLICY_BYTES)}`);
    const tooBig = await cli(['policy', 'plan', big, ...acct]);
    expect(tooBig.code).toBe(1);
    expect(tooBig.err).toBe(
      `error: ${big} is ${MAX_POLICY_BYTES + 2} bytes, larger than ${MAX_POLICY_BYTES} bytes, the most a policy may be`,
    );
    const bigStdin = await cliWith(['policy', 'check', '-', ...acct], `{}${' '.repeat(MAX_POLICY_BYTES)}`);
    expect(bigStdin.code).toBe(1);
    expect(bigStdin.err).toMatch(/^error: the policy on standard input is larger than 1048576 bytes/);
    const latin1 = file('latin1.jsonc', Buffer.from([0x7b, 0xe9, 0x7d]));
    expect((await cli(['policy', 'check', latin1, ...acct])).err).toBe(`error: ${latin1} is not UTF-8 text`);
    const stdinBad = await cliWith(['policy', 'check', '-', ...acct], BAD);
    expect(stdinBad.code).toBe(1);
    expect(stdinBad.out).toMatch(/^<stdin>:4:\d+: error: /);
    // Largest allowed: accepted whole.
    const largest = `{}${' '.repeat(MAX_POLICY_BYTES - 3)}\n`;
    expect(Buffer.byteLength(largest)).toBe(MAX_POLICY_BYTES);
    expect(await cli(['policy', 'check', file('largest.jsonc', largest), ...acct])).toMatchObject({
      code: 0,
      out: 'ok: 0 tests passed',
    });
  });

  it('plan, explain, tags and tagged setup keys in a block, through the serving broker', async () => {
    const t = await startTestBroker(backend);
    try {
      const acct = ['--account', 'default', '--data-dir', backend.dataDir];
      const laptop = t.device();
      const db1 = t.device();
      const db2 = t.device();
      await laptop.enroll(t.setupKey, { hostname: 'laptop-1' });
      await db1.enroll(t.setupKey, { hostname: 'db-1' });
      await db2.enroll(t.setupKey, { hostname: 'db-2' });

      expect((await cli(['policy', 'apply', file('base.jsonc', BASE), ...acct])).code).toBe(0);

      // Tags: declared ones only; the operator owns every tag; none clears them.
      const tagged = await cli(['devices', 'tag', 'db-1', 'tag:db', 'tag:web', ...acct]);
      expect(tagged).toMatchObject({ code: 0, out: 'device db-1: tags tag:db, tag:web' });
      expect((await cli(['devices', 'tag', 'db-1', ...acct])).out).toBe('device db-1: no tags');
      expect((await cli(['devices', 'tag', 'db-1', 'tag:db', ...acct])).code).toBe(0);
      expect((await cli(['devices', 'tag', db2.id, 'tag:db', ...acct])).code).toBe(0);
      const undeclared = await cli(['devices', 'tag', 'db-1', 'tag:nope', ...acct]);
      expect(undeclared).toMatchObject({
        code: 1,
        err: "error: tag:nope: not declared in the policy's tagOwners",
      });
      expect((await cli(['devices', 'tag', 'db-1', 'NotATag', ...acct])).code).toBe(1);
      expect((await cli(['devices', 'tag', 'ghost', 'tag:db', ...acct])).err).toMatch(/no device "ghost"/);
      const list = await cli(['devices', 'list', ...acct]);
      expect(list.out.split('\n')[0]).toMatch(/\sTAGS\s+USER\s/);
      expect(list.out).toMatch(/db-1 .* tag:db /);

      // The plan against the real devices: gains and losses, both directions.
      const next = file('next.jsonc', NEXT);
      const plan = await cli(['policy', 'plan', next, ...acct]);
      expect(plan.code).toBe(0);
      const lines = plan.out.split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          'laptop-1: + out to db-1, db-2: tcp 5432',
          'laptop-1: - in from db-1, db-2: icmp',
          'db-1: + in from laptop-1: tcp 5432',
          'db-1: - out to laptop-1: icmp',
          'db-2: + in from laptop-1: tcp 5432',
        ]),
      );
      expect(lines.at(-1)).toBe('3 devices would change (compared with version 1)');
      const planJson = JSON.parse((await cli(['policy', 'plan', next, ...acct, '--json'])).out);
      expect(planJson).toMatchObject({ ok: true, fromVersion: 1, tests: 3 });
      expect(planJson.devices.map((d: { device: string }) => d.device)).toEqual(['db-1', 'db-2', 'laptop-1']);
      expect((await cli(['policy', 'plan', file('base2.jsonc', BASE), ...acct])).out).toBe(
        'no device changes (compared with version 1)',
      );
      const badPlan = await cli(['policy', 'plan', file('bad.jsonc', BAD), ...acct]);
      expect(badPlan.code).toBe(1);
      expect(badPlan.out).toMatch(/bad\.jsonc:4:\d+: error: /);

      // A failing test of the file is a located error too.
      const failing = NEXT.replace('"deny": ["db-1:22"]', '"deny": ["db-1:5432"]');
      const failed = await cli(['policy', 'check', file('failing.jsonc', failing), ...acct]);
      expect(failed.code).toBe(1);
      expect(failed.out).toMatch(
        /failing\.jsonc:\d+:\d+: error: test failed: laptop-1 -> db-1:5432 is allowed/,
      );

      expect((await cli(['policy', 'apply', next, ...acct])).out).toBe(
        'applied version 2 (3 devices changed)',
      );

      // Explain: the rule and its line, or denied; then all each side may open.
      const allowed = await cli(['policy', 'explain', 'laptop-1', 'db-1:5432', ...acct]);
      expect(allowed.code).toBe(0);
      expect(allowed.out.split('\n')).toEqual([
        'allowed by rule 1 (line 7): { "src": ["laptop-1"], "dst": ["tag:db"], "ports": ["tcp:5432"] }',
        'laptop-1 may open on db-1: tcp 5432; icmp',
        'db-1 may open on laptop-1: none',
      ]);
      const icmp = await cli(['policy', 'explain', 'laptop-1', 'db-1:icmp', ...acct]);
      expect(icmp.out.split('\n')[0]).toMatch(/^allowed by rule 2 \(line 8\): /);
      const denied = await cli(['policy', 'explain', 'laptop-1', 'db-1:22', ...acct]);
      expect(denied.out.split('\n')[0]).toBe('denied: no rule allows laptop-1 to reach db-1:22');
      const reverse = await cli(['policy', 'explain', 'db-1', 'laptop-1:udp/53', ...acct, '--json']);
      expect(JSON.parse(reverse.out)).toMatchObject({
        allowed: false,
        reasons: [],
        out: [],
        in: [{ proto: 'tcp', ports: [[5432, 5432]] }, { proto: 'icmp' }],
      });
      expect((await cli(['policy', 'explain', 'laptop-1', 'ghost', ...acct])).err).toMatch(
        /no device named ghost/,
      );
      expect((await cli(['policy', 'explain', 'laptop-1', 'db-1:http', ...acct])).code).toBe(1);

      // A setup key with a block and a tag: its device gets an address there, and the tag.
      const keyOut = await cli([
        'setup-keys',
        'create',
        '--tag',
        'tag:web',
        '--tag',
        'tag:db',
        '--cidr',
        'lab',
        '--reusable',
        ...acct,
        '--json',
      ]);
      expect(keyOut.code).toBe(0);
      const key = JSON.parse(keyOut.out);
      expect(key.setupKey).toMatchObject({ tags: ['tag:db', 'tag:web'], cidr: 'lab' });
      const keyList = await cli(['setup-keys', 'list', ...acct]);
      expect(keyList.out).toMatch(/tag:db,tag:web\s+lab\s+true/);
      const web = t.device();
      const enrolled = await web.enroll(key.key, { hostname: 'web-1' });
      expect(ipv4InCidr(enrolled.address, '100.96.0.0/16')).toBe(true);
      // A device enrolled with a key without a block, now that the block exists, is kept out of it
      // (laptop-1 was enrolled before the policy had blocks: its address may lie anywhere).
      const plain = t.device();
      expect(
        ipv4InCidr((await plain.enroll(t.setupKey, { hostname: 'plain-1' })).address, '100.96.0.0/16'),
      ).toBe(false);
      const devices = JSON.parse((await cli(['devices', 'list', ...acct, '--json'])).out);
      expect(devices.find((d: { name: string }) => d.name === 'web-1')).toMatchObject({
        tags: ['tag:db', 'tag:web'],
        user: null,
      });
      const noBlock = await cli(['setup-keys', 'create', '--cidr', 'nowhere', ...acct]);
      expect(noBlock).toMatchObject({
        code: 1,
        err: 'error: the policy has no block "nowhere" in its cidrs',
      });
      const undeclaredKey = await cli(['setup-keys', 'create', '--tag', 'tag:nope', ...acct]);
      expect(undeclaredKey.err).toMatch(/tag:nope: not declared/);
    } finally {
      await t.close();
    }
  });
});
