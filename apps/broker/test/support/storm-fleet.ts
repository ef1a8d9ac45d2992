/**
 * The devices of the reconnection-storm test in one process: enrolled over the HTTP API, connected
 * as agents, dropped and reconnected together, and checked against the account the test knows.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { API_PATHS, CAPABILITY_VERSION, HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import type { TestBroker } from './fixture';
import { StormClient, type StormDevice, type StormTarget } from './storm-client';
import { netmapDiff } from './storm-netmap';

const ENROLL_CONCURRENCY = 32;
/**
 * Just under the broker's admission gate (DEFAULT_MAX_PENDING_CONNECTIONS, 512): a fleet coming up
 * is not turned away. Each device's coming online is a delta to every device already up, so the
 * faster the ramp, the fewer deltas (at 1,000 devices: 64 at a time sent ~350k, 500 ~140k).
 */
const CONNECT_CONCURRENCY = 500;
/** Lines of a failure message listing devices (the count is always given). */
const LISTED = 20;

/** Raw X25519 keys cut from their DER encodings (RFC 8410 prefixes): native and fast. */
function keyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16).toString('base64'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64'),
  };
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class StormFleet {
  readonly clients = new Map<string, StormClient>();
  /** Clients of devices the test removed: stopped at the end with the others. */
  private readonly gone: StormClient[] = [];
  private readonly target: StormTarget;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly t: TestBroker,
    brokerPublicKey: string,
  ) {
    // One agent for every socket; no pooling (each WebSocket keeps its own TLS connection).
    const agent = new Agent({ ca: readFileSync(t.broker.certFile), keepAlive: false });
    this.target = { url: t.broker.url, agent, brokerPublicKey };
    // Agents ping every interval; the broker closes a connection silent for three.
    this.heartbeat = setInterval(() => {
      for (const c of this.clients.values()) c.ping();
    }, HEARTBEAT_INTERVAL_MS / 3);
  }

  /** Enrolls one device with the account's setup key, as `trellis up` would (name = hostname). */
  async enroll(name: string): Promise<StormClient> {
    const keys = keyPair();
    const res = await this.t.api('POST', API_PATHS.enroll, {
      body: {
        protocolVersion: CAPABILITY_VERSION,
        setupKey: this.t.setupKey,
        publicKey: keys.publicKey,
        name,
        hostname: name,
        os: 'linux',
        endpoints: ['192.0.2.1:51820'],
      },
    });
    if (res.status !== 201) throw new Error(`enrolling ${name}: ${res.status} ${res.text}`);
    const device: StormDevice = { deviceId: res.json.deviceId, name: res.json.name ?? name, ...keys };
    const client = new StormClient(device, this.target);
    this.clients.set(device.deviceId, client);
    return client;
  }

  async enrollMany(names: readonly string[]): Promise<void> {
    await pool(names, ENROLL_CONCURRENCY, async (name) => {
      await this.enroll(name);
    });
  }

  /** Connects every idle client, CONNECT_CONCURRENCY at a time (a fleet coming up). */
  async connectAll(deadline: number): Promise<void> {
    const idle = [...this.clients.values()].filter((c) => c.state === 'idle');
    await pool(idle, CONNECT_CONCURRENCY, (c) => c.connect(deadline));
  }

  /** Every connection drops at the same moment (terminated, no close handshake). */
  dropAll(): void {
    for (const c of this.clients.values()) c.drop();
  }

  /** Every dropped client reconnects at once with the netmap it holds; resolves when each is done. */
  async reconnectAll(deadline: number): Promise<void> {
    await Promise.all(
      [...this.clients.values()].filter((c) => c.state === 'idle').map((c) => c.connect(deadline)),
    );
  }

  /** Forgets a device the test removed (its client stops once the broker closes it). */
  removed(deviceId: string): StormClient | undefined {
    const c = this.clients.get(deviceId);
    this.clients.delete(deviceId);
    if (c) this.gone.push(c);
    c?.stop();
    return c;
  }

  /** The account as the test knows it: device id → name. */
  known(): Map<string, string> {
    return new Map([...this.clients].map(([id, c]) => [id, c.device.name]));
  }

  /**
   * What is wrong across the fleet now, one line per device (empty: every device holds the netmap
   * the account has: every other device as a peer, by its current name, online).
   */
  problems(): string[] {
    const known = this.known();
    const out: string[] = [];
    for (const [id, c] of this.clients) {
      const expected = new Map(known);
      expected.delete(id);
      const diff = c.state === 'ready' ? netmapDiff(c.held.peers, expected) : [`${c.state}: ${c.lastError}`];
      if (diff.length > 0) out.push(`${c.device.name}: ${diff.join(', ')}`);
    }
    return out;
  }

  /** Stale or backwards frames any device was sent, one line per device. */
  violations(): string[] {
    return [...this.clients.values()]
      .filter((c) => c.held.violations.length > 0)
      .map((c) => `${c.device.name}: ${c.held.violations.join('; ')}`);
  }

  /**
   * Polls until no device has a problem; past `deadline` throws listing the devices that did not
   * converge. A stale or backwards frame fails at once: no wait can repair it.
   */
  async waitConverged(deadline: number, what: string): Promise<void> {
    for (;;) {
      const stale = this.violations();
      if (stale.length > 0)
        throw new Error(
          `${stale.length} devices were sent stale or backwards frames (${what}):\n${summary(stale)}`,
        );
      const left = this.problems();
      if (left.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `${left.length} of ${this.clients.size} devices did not converge (${what}):\n${summary(left)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Totals for the test's log line. */
  stats() {
    let snapshots = 0;
    let deltas = 0;
    let resumed = 0;
    let retries = 0;
    let closedByBroker = 0;
    for (const c of this.clients.values()) {
      snapshots += c.held.snapshots;
      deltas += c.held.deltas;
      resumed += c.held.resumed;
      retries += c.retries;
      closedByBroker += c.closedByBroker.length;
    }
    return { devices: this.clients.size, snapshots, deltas, resumed, retries, closedByBroker };
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const c of [...this.clients.values(), ...this.gone]) c.drop();
    this.target.agent.destroy();
  }
}

/**
 * Fails early, and says why, where N devices cannot fit: each needs two descriptors here (the
 * client's socket and the broker's), plus some for the database and the test. Linux only (elsewhere
 * nothing is checked).
 */
export function checkOpenFileLimit(devices: number): void {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return;
  }
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? Number.POSITIVE_INFINITY);
  const needed = 2 * devices + 256;
  if (soft < needed)
    throw new Error(
      `open file limit ${soft} < ${needed} for ${devices} devices: raise it (ulimit -n) or set STORM_DEVICES`,
    );
}

export function summary(lines: readonly string[]): string {
  const more = lines.length > LISTED ? `\n  … and ${lines.length - LISTED} more` : '';
  return `  ${lines.slice(0, LISTED).join('\n  ')}${more}`;
}
