import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INFRA } from './helpers';

const CFG = join(INFRA, 'haproxy', 'haproxy.cfg');
const text = readFileSync(CFG, 'utf8');

/** Throwaway certificates, made by the script the compose setup uses. */
const certs = mkdtempSync(join(tmpdir(), 'trellis-haproxy-'));
execFileSync('bash', [join(INFRA, 'compose', 'make-certs.sh'), 'broker.test', certs], { stdio: 'pipe' });

/** `haproxy -c` on a config, the certificates pointed at the throwaway ones. */
function check(file: string): { status: number | null; output: string } {
  const r = spawnSync('haproxy', ['-c', '-f', file], {
    encoding: 'utf8',
    env: {
      ...process.env,
      TRELLIS_TLS_PEM: join(certs, 'public.pem'),
    },
  });
  if (r.error) throw new Error(`haproxy is not installed (scripts/lib.sh installs it): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('HAProxy config (infra/haproxy/haproxy.cfg)', () => {
  it('haproxy -c accepts it; its only warnings are the brokers not resolving outside compose', () => {
    const { status, output } = check(CFG);
    expect(output).toContain('Configuration file is valid');
    expect(status).toBe(0);
    const warnings = output.split('\n').filter((l) => l.includes('[WARNING]'));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'broker\d'/);
  });

  it('haproxy -c rejects a broken copy and a missing certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-haproxy-bad-'));
    writeFileSync(join(dir, 'typo.cfg'), text.replace('balance leastconn', 'balance leastconnections'));
    expect(check(join(dir, 'typo.cfg')).status).not.toBe(0);
    const pem = ['"$', '{TRELLIS_TLS_PEM}"'].join(''); // haproxy's syntax, not a template
    writeFileSync(join(dir, 'nocert.cfg'), text.replace(pem, `"${dir}/missing.pem"`));
    expect(check(join(dir, 'nocert.cfg')).status).not.toBe(0);
  });

  it('ends TLS, passes plain HTTP with a PROXY v2 header (checks too), and keeps WebSockets open', () => {
    expect(text).toMatch(/^\s*bind :443 ssl crt /m);
    expect(text).toMatch(/^\s*option httpchk GET \/healthz$/m);
    expect(text).toMatch(/^\s*default-server send-proxy-v2 check check-send-proxy /m);
    // Agents and relays send a heartbeat every 15 s and give up after three: the tunnel outlives that.
    const tunnel = /^\s*timeout tunnel (\d+)(s|m|h)$/m.exec(text)!;
    const seconds = Number(tunnel[1]) * { s: 1, m: 60, h: 3600 }[tunnel[2] as 's' | 'm' | 'h'];
    expect(seconds).toBeGreaterThan(45);
    expect(text).toMatch(/^\s*http-request deny deny_status 404 if \{ path \/metrics \}/m);
    // Idle memory: no session cache allocated up front (tickets resume sessions).
    expect(text).toMatch(/^\s*tune\.ssl\.cachesize 0$/m);
  });
});
