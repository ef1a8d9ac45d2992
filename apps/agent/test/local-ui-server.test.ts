import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_UI_CSRF_HEADER, LocalUiSessionResponse, StatusResponse, UpResponse } from '@trellis/proto';
import pino from 'pino';
import type { Agent } from '../src/agent/agent';
import { LocalUiServer } from '../src/ui/ui-server';
import { readUiLink, resolveOperator, writeTokenFile } from '../src/ui/ui-token';
import { waitFor } from '../src/util/wait';
import { BrokerDouble } from './helpers/broker-double';
import { httpCall, startUi, UI_WEB_DIST } from './helpers/local-ui';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { newTestAgent } from './helpers/test-agent';

jest.setTimeout(60_000);
const cert = makeSelfSignedCert();

describe("trellisd's local UI: authenticated to the local operator", () => {
  let broker: BrokerDouble;
  let brokerUrl: string;
  let dir: string;
  let agent: Agent;
  let ui: LocalUiServer;
  let tokenFile: string;
  let base: string;
  let host: string;
  let token: string;
  const logs: string[] = [];

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    brokerUrl = `https://127.0.0.1:${await broker.listen(0)}`;
    dir = mkdtempSync(join(tmpdir(), 'trl-ui-agent-'));
    logs.length = 0;
    ({ agent } = newTestAgent(dir, logs, { interfaceName: 'trlui0' }));
    await agent.start();
    const started = await startUi(agent, logs);
    ui = started.ui;
    tokenFile = started.tokenFile;
    ({ url: base, token } = started.token());
    host = new URL(base).host;
  });
  afterEach(async () => {
    await ui.close();
    await agent.shutdown();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: object, headers: Record<string, string> = {}) =>
    httpCall(base, path, {
      method: 'POST',
      headers: { origin: `http://${host}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  /** A session as the page opens one: its cookie and CSRF token. */
  async function session(): Promise<{ cookie: string; csrf: string }> {
    const res = await post('/api/session', { token });
    expect(res.status).toBe(200);
    const setCookie = (res.headers['set-cookie'] as string[])[0]!;
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    return { cookie: setCookie.split(';')[0]!, csrf: LocalUiSessionResponse.parse(res.json).csrf };
  }
  const authed = (s: { cookie: string; csrf: string }) => ({
    cookie: s.cookie,
    [LOCAL_UI_CSRF_HEADER]: s.csrf,
  });

  it('writes its URL and a fresh token to a 0600 file owned by root without an operator; `trellis ui` prints the link', async () => {
    const st = statSync(tokenFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(0);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await readUiLink(tokenFile)).toBe(`${base}#token=${token}`);
    expect(logs.join('\n')).not.toContain(token);
    await ui.close();
    await expect(readUiLink(tokenFile)).rejects.toThrow(/missing: start trellisd with --ui-listen/);
  });

  it('refuses: no session, a wrong token, a cookie without (or with a wrong) CSRF token', async () => {
    expect((await httpCall(base, '/api/status')).status).toBe(401);
    const wrong = await post('/api/session', { token: 'A'.repeat(43) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await post('/api/session', {})).status).toBe(400);
    expect((await httpCall(base, '/api/session')).status).toBe(405);
    const s = await session();
    expect((await httpCall(base, '/api/status', { headers: { cookie: s.cookie } })).status).toBe(403);
    const badCsrf = { cookie: s.cookie, [LOCAL_UI_CSRF_HEADER]: 'B'.repeat(43) };
    expect((await httpCall(base, '/api/status', { headers: badCsrf })).status).toBe(403);
    // The CSRF token alone, or with a made-up cookie, is no session either.
    const noCookie = {
      [LOCAL_UI_CSRF_HEADER]: s.csrf,
      cookie: `${s.cookie.split('=')[0]}=${'C'.repeat(43)}`,
    };
    expect((await httpCall(base, '/api/status', { headers: noCookie })).status).toBe(401);
    expect((await post('/api/down', {}, { [LOCAL_UI_CSRF_HEADER]: s.csrf })).status).toBe(401);
    const ok = await httpCall(base, '/api/status', { headers: authed(s) });
    expect(ok.status).toBe(200);
    expect(StatusResponse.parse(ok.json).state).toBe('needs-enrollment');
    expect(logs.join('\n')).toContain('a wrong token was offered');
  });

  it('refuses a foreign Host (DNS rebinding) and a foreign or missing Origin on state changes', async () => {
    const s = await session();
    const port = new URL(base).port;
    for (const h of [`evil.example:${port}`, '127.0.0.1', `127.0.0.1:${Number(port) + 1}`]) {
      const res = await httpCall(base, '/api/status', { headers: { ...authed(s), host: h } });
      expect(res.status).toBe(421);
    }
    // No Host at all: Node's HTTP/1.1 server refuses it before we see it.
    expect((await httpCall(base, '/api/status', { headers: { ...authed(s), host: '' } })).status).toBe(400);
    expect((await httpCall(base, '/', { headers: { host: `evil.example:${port}` } })).status).toBe(421);
    expect(
      (await httpCall(base, '/api/status', { headers: { ...authed(s), host: `localhost:${port}` } })).status,
    ).toBe(200);
    for (const origin of ['http://evil.example', `http://localhost:${Number(port) + 1}`, 'null']) {
      const res = await post('/api/down', {}, { ...authed(s), origin });
      expect(res.status).toBe(403);
      expect((await post('/api/session', { token }, { origin })).status).toBe(403);
    }
    const noOrigin = await httpCall(base, '/api/down', {
      method: 'POST',
      headers: { ...authed(s), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(noOrigin.status).toBe(403);
    // A form post from anywhere is not JSON: refused before it reaches the agent.
    const form = await post('/api/up', {}, { ...authed(s), 'content-type': 'text/plain' });
    expect(form.status).toBe(415);
    expect((await agent.status()).state).toBe('needs-enrollment');
  });

  it('a restart rotates the token: the old token and the old sessions are refused', async () => {
    const s = await session();
    const oldToken = token;
    const port = Number(new URL(base).port);
    await ui.close();
    const again = await startUi(agent, logs, { tokenFile, port });
    ui = again.ui;
    expect(again.token().url).toBe(base);
    expect(again.token().token).not.toBe(oldToken);
    expect((await httpCall(base, '/api/status', { headers: authed(s) })).status).toBe(401);
    expect((await post('/api/session', { token: oldToken })).status).toBe(401);
    token = again.token().token;
    expect((await httpCall(base, '/api/status', { headers: authed(await session()) })).status).toBe(200);
  });

  it('each operation reaches the agent: sign in (device flow), connect, disconnect, connect again', async () => {
    const s = await session();
    const up = await post(
      '/api/up',
      { broker: brokerUrl, fingerprint: cert.fingerprint, name: 'laptop' },
      authed(s),
    );
    expect(up.status).toBe(200);
    const prompt = UpResponse.parse(up.json).signIn!;
    expect(prompt.userCode).toBe(broker.signIns.latest().userCode);
    expect(prompt.verificationUriComplete).toBe(`${brokerUrl}/device#code=${prompt.userCode}`);
    const status = async () =>
      StatusResponse.parse((await httpCall(base, '/api/status', { headers: authed(s) })).json);
    expect((await status()).signIn?.userCode).toBe(prompt.userCode);
    broker.signIns.approve();
    await waitFor(async () => (await status()).state === 'connected', 15_000, 50);
    expect((await status()).self?.name).toBe('laptop');

    const down = await post('/api/down', {}, authed(s));
    expect(down.status).toBe(200);
    expect((await agent.status()).state).toBe('stopped');
    const connect = await post('/api/up', {}, authed(s));
    expect(UpResponse.parse(connect.json).message).toMatch(/^up: laptop .*connected/);
    expect((await agent.status()).state).toBe('connected');
    // No setup key (nor CA file) from the UI: the schema refuses unknown fields.
    const key = await post('/api/up', { setupKey: 'test-setup-key-0001' }, authed(s));
    expect(key.status).toBe(400);
  });

  it("an agent's refusal is the answer's error; unknown paths are 404s", async () => {
    const s = await session();
    const res = await post('/api/up', {}, authed(s));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ ok: false, error: expect.stringMatching(/not enrolled/) });
    expect((await httpCall(base, '/api/nothing', { headers: authed(s) })).status).toBe(404);
    expect((await httpCall(base, '/etc/passwd')).status).toBe(404);
  });

  it('serves the page with a strict Content-Security-Policy and no referrer', async () => {
    const page = await httpCall(base, '/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="/app.js">');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect((await httpCall(base, '/app.js')).headers['content-type']).toMatch(/^text\/javascript/);
  });
});

describe('the UI token file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trl-ui-token-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const content = { url: 'http://127.0.0.1:41820/', token: 'T'.repeat(43) };

  it("belongs to the operator (resolved through NSS), mode 0600, and nobody else's", async () => {
    const nobody = await resolveOperator('nobody');
    expect(nobody).toMatchObject({ name: 'nobody', uid: 65534 });
    const file = join(dir, 'run', 'ui-token');
    await writeTokenFile(file, content, nobody);
    const st = statSync(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect([st.uid, st.gid]).toEqual([nobody.uid, nobody.gid]);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o755);
    // Read as the operator works; as another unprivileged user (daemon, uid 1) it does not.
    chmodSync(dir, 0o755);
    const readAs = (uid: number) =>
      spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', file], {
        encoding: 'utf8',
      });
    expect(JSON.parse(readAs(nobody.uid).stdout)).toEqual(content);
    const other = readAs(1);
    expect(other.status).not.toBe(0);
    expect(other.stderr).toContain('Permission denied');
    await expect(readUiLink(file)).resolves.toBe(`${content.url}#token=${content.token}`);
    await expect(resolveOperator('no-such-user-here')).rejects.toThrow('no such user');
    await expect(resolveOperator('x;rm -rf')).rejects.toThrow('bad operator name');
  });

  it('is never put in a directory others may write (they could swap it for a link)', async () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o1777);
    await expect(writeTokenFile(join(open, 'ui-token'), content, null)).rejects.toThrow(/writable by others/);
    // The server that could not write it does not stay up: nobody could open it.
    const logs: string[] = [];
    const { agent } = newTestAgent(join(dir, 'state'), logs, { interfaceName: 'trluitok0' });
    const ui = new LocalUiServer({
      host: '127.0.0.1',
      port: 0,
      webDir: UI_WEB_DIST,
      tokenFile: join(open, 'ui-token'),
      operator: null,
      agent,
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
    });
    await expect(ui.listen()).rejects.toThrow(/writable by others/);
    await expect(httpCall(ui.url, '/')).rejects.toThrow(/ECONNREFUSED/);
  });
});
