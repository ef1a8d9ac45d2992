import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_PATHS } from '@trellis/proto';
import { OIDC_SECRET_ENV, oidcFromFlags } from '../../src/cli/oidc-flags';
import { runCli } from '../../src/cli/program';
import { loggableUrl } from '../../src/http/exception-filter';
import { FLOW_TTL_SECONDS, flowCookie, flowFromCookie, safeReturnTo } from '../../src/oidc/flow-cookie';
import { checkOidcOptions } from '../../src/oidc/oidc-options';

const base = { issuer: 'https://idp.example.test', clientId: 'trellis', clientSecret: 'secret-1' };

describe('OIDC settings are checked at start', () => {
  it('fills in the defaults: account default, role member, the button named after the issuer host', () => {
    expect(checkOidcOptions(base)).toEqual({
      ...base,
      account: 'default',
      role: 'member',
      name: 'idp.example.test',
    });
    expect(checkOidcOptions({ ...base, role: 'admin', account: 'acme', name: 'Acme SSO' })).toMatchObject({
      role: 'admin',
      account: 'acme',
      name: 'Acme SSO',
    });
  });

  it.each([
    [{ issuer: 'not a url' }, '--oidc-issuer must be a URL'],
    [{ issuer: 'http://idp.example.test' }, 'must be an https:// URL'],
    [{ issuer: 'https://idp.example.test/?x=1' }, 'without query'],
    [{ clientId: '' }, '--oidc-client-id'],
    [{ clientSecret: '' }, 'client secret is missing'],
    [{ account: 'Not A Label' }, '--oidc-account'],
    [{ role: 'owner' }, '--oidc-role must be member or admin'],
    [{ role: 'root' }, '--oidc-role must be member or admin'],
    [{ name: 'x'.repeat(65) }, '--oidc-name'],
  ])('refuses %j with a clear error', (change, error) => {
    expect(() => checkOidcOptions({ ...base, ...change })).toThrow(error);
  });

  it('takes plain http only on loopback (a provider beside the broker)', () => {
    expect(checkOidcOptions({ ...base, issuer: 'http://127.0.0.1:9000' }).issuer).toBe(
      'http://127.0.0.1:9000',
    );
  });
});

describe('the serve flags of OIDC', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oidc-flags-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the client secret from a file, else from the environment, never from a flag', () => {
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-the-file\n');
    const flags = { oidcIssuer: base.issuer, oidcClientId: 'trellis', oidcRole: 'admin', oidcName: 'SSO' };
    expect(oidcFromFlags({ ...flags, oidcClientSecretFile: file }, {})).toEqual({
      issuer: base.issuer,
      clientId: 'trellis',
      clientSecret: 'from-the-file',
      role: 'admin',
      name: 'SSO',
    });
    expect(oidcFromFlags(flags, { [OIDC_SECRET_ENV]: 'from-env' })?.clientSecret).toBe('from-env');
    expect(() => oidcFromFlags(flags, {})).toThrow(`--oidc-client-secret-file FILE or ${OIDC_SECRET_ENV}`);
    expect(() => oidcFromFlags({ ...flags, oidcClientSecretFile: join(dir, 'missing') }, {})).toThrow(
      'cannot read --oidc-client-secret-file',
    );
  });

  it('is off without --oidc-issuer, and the other flags alone are a mistake', () => {
    expect(oidcFromFlags({}, {})).toBeUndefined();
    expect(() => oidcFromFlags({ oidcClientId: 'x' }, {})).toThrow('need --oidc-issuer');
    expect(() => oidcFromFlags({ oidcIssuer: base.issuer }, {})).toThrow('needs --oidc-client-id');
  });

  it("are in the broker's help", async () => {
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t), write: () => {} };
    await runCli(['serve', '--help'], io).catch(() => 0);
    const help = out.join('\n');
    for (const flag of [
      '--oidc-issuer',
      '--oidc-client-id',
      '--oidc-client-secret-file',
      '--oidc-account',
      '--oidc-role',
      '--oidc-name',
    ]) {
      expect(help).toContain(flag);
    }
    expect(help).toContain(OIDC_SECRET_ENV);
  });
});

describe('the OIDC flow cookie and the way back', () => {
  const flow = { state: 's1', nonce: 'n1', verifier: 'v1', returnTo: '/device', redirectUri: 'https://b/cb' };
  const req = (cookie: string) => ({ headers: { cookie } }) as IncomingMessage;
  const cookiePair = (setCookie: string) => setCookie.split(';')[0]!;

  it('is read back only with the same client secret, unaltered and before it expires', () => {
    const now = Date.now();
    const cookie = cookiePair(flowCookie('secret-a', flow, now));
    expect(flowFromCookie(req(cookie), 'secret-a', now)).toMatchObject(flow);
    expect(flowFromCookie(req(cookie), 'secret-b', now)).toBeNull();
    expect(flowFromCookie(req(cookie), 'secret-a', now + FLOW_TTL_SECONDS * 1000 + 1)).toBeNull();
    const [name, value] = cookie.split('=') as [string, string];
    const bytes = Buffer.from(value, 'base64url');
    bytes[20]! ^= 1;
    expect(flowFromCookie(req(`${name}=${bytes.toString('base64url')}`), 'secret-a', now)).toBeNull();
    expect(flowFromCookie(req(`${name}=garbage`), 'secret-a', now)).toBeNull();
    // Nothing of it can be read without the key.
    expect(Buffer.from(value, 'base64url').toString('latin1')).not.toContain('/device');
  });

  it('comes back to same-origin paths only', () => {
    expect(safeReturnTo('/device')).toBe('/device');
    expect(safeReturnTo('/devices?q=a')).toBe('/devices?q=a');
    for (const bad of [
      'https://evil.test/',
      '//evil.test/',
      '/\\evil.test',
      '\\\\evil',
      'devices',
      '/api/v1/x',
      '/a\nb',
      null,
      7,
    ]) {
      expect(safeReturnTo(bad)).toBe('/');
    }
  });

  it("keeps a callback's code and state out of the logged URL", () => {
    expect(loggableUrl(`${API_PATHS.oidcCallback}?code=c0de&state=st4te`)).toBe(
      `${API_PATHS.oidcCallback}?[redacted]`,
    );
    expect(loggableUrl(API_PATHS.oidcStart)).toBe(API_PATHS.oidcStart);
  });
});
