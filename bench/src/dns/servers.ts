import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';

/** A DNS server under test: where it answers, and how to stop it. */
export interface ServerUnderTest {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

/** Resolves with the first match of `re` on the child's stdout or stderr (rejects if it exits first). */
function lineOf(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (b: Buffer) => {
      seen += b.toString();
      const m = re.exec(seen);
      if (m) resolve(m);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`${what} exited (${code}) before ready:\n${seen.slice(-2000)}`)),
    );
  });
}

/** A query until it is answered (a zone still loading answers NXDOMAIN, which does not count). */
export async function waitAnswered(port: number, wire: Buffer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const s = createSocket('udp4');
  try {
    for (;;) {
      const got = await new Promise<Buffer | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 500);
        s.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        s.send(wire, port, '127.0.0.1');
      });
      // NOERROR with one answer.
      if (got && (got.readUInt16BE(2) & 0xf) === 0 && got.readUInt16BE(6) > 0) return;
      if (Date.now() > deadline) throw new Error(`no answer on port ${port} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    s.close();
  }
}

/**
 * The real broker (`trellis-broker serve` on PostgreSQL) with its DNS server on loopback and no
 * rate limit (dnsperf asks from one address), and `names` devices put straight into its database.
 */
export async function startBroker(
  root: string,
  dataDir: string,
  databaseUrl: string,
  zone: string,
  names: number,
  probe: Buffer,
): Promise<ServerUnderTest> {
  const child = spawn(
    process.execPath,
    [
      join(root, 'apps/broker/dist/cli.js'),
      'serve',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--zone',
      zone,
      '--dns-listen',
      '127.0.0.1:0',
      '--dns-rate-limit',
      '0',
      '--log-level',
      'warn',
    ],
    { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const m = await lineOf(child, /dns: \S+ on udp and tcp port (\d+)/, 'the broker');
  const port = Number(m[1]);
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM accounts WHERE name = 'default'`);
    const account = rows[0]?.id;
    if (!account) throw new Error('the broker made no default account');
    await db.query(
      `INSERT INTO devices (account_id, name, hostname, os, public_key, address)
       SELECT $1, 'd' || i, 'bench', 'linux', substr(md5(i::text) || md5((i + 1)::text), 1, 43) || '=',
              '100.' || (64 + i / 65536) || '.' || ((i / 256) % 256) || '.' || (i % 256)
       FROM generate_series(1, $2::int) AS i`,
      [account, names],
    );
    // The serial moved: the zone reads the account again within its reload interval.
    await db.query('UPDATE accounts SET netmap_serial = netmap_serial + 1 WHERE id = $1', [account]);
  } finally {
    await db.end();
  }
  await waitAnswered(port, probe, 30_000);
  return {
    name: 'trellis broker',
    port,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await waitExit(child);
    },
  };
}

/** NSD serving the same names, one server process as the broker is one event loop. */
export async function startNsd(
  dir: string,
  zone: string,
  port: number,
  records: Array<[string, string]>,
  probe: Buffer,
): Promise<ServerUnderTest> {
  const zoneFile = join(dir, `${zone}.zone`);
  writeFileSync(
    zoneFile,
    [
      `$ORIGIN ${zone}.`,
      '$TTL 30',
      `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 30`,
      `@ IN NS ns1.${zone}.`,
      'ns1 IN A 127.0.0.1',
      ...records.map(([name, address]) => `${name}. IN A ${address}`),
      '',
    ].join('\n'),
  );
  const conf = join(dir, 'nsd.conf');
  writeFileSync(
    conf,
    [
      'server:',
      `  ip-address: 127.0.0.1@${port}`,
      '  server-count: 1',
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${dir}"`,
      '  database: ""',
      `  zonelistfile: "${join(dir, 'zone.list')}"`,
      `  xfrdfile: "${join(dir, 'xfrd.state')}"`,
      `  pidfile: "${join(dir, 'nsd.pid')}"`,
      `  logfile: "${join(dir, 'nsd.log')}"`,
      '  verbosity: 0',
      // The broker answers with the A record alone: so does NSD here.
      '  minimal-responses: yes',
      '  rrl-ratelimit: 0',
      'remote-control:',
      '  control-enable: no',
      'zone:',
      `  name: ${zone}`,
      `  zonefile: ${zoneFile}`,
      '',
    ].join('\n'),
  );
  execFileSync('nsd-checkconf', [conf]);
  const child = spawn('nsd', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = waitExit(child);
  await Promise.race([
    waitAnswered(port, probe, 30_000),
    exited.then(() => {
      throw new Error(`nsd exited; see ${join(dir, 'nsd.log')}`);
    }),
  ]);
  return {
    name: 'nsd',
    port,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
