/**
 * Capability versions (docs/capability-versions.md): a number that only grows. Every peer sends its
 * own in `protocolVersion` (hello, relay-hello, enroll, device-auth); a broker serves any version
 * from MIN_CAPABILITY_VERSION up, and announces its own (challenge, relay-welcome, info).
 *
 * | version | what it added                                                                        |
 * |---------|--------------------------------------------------------------------------------------|
 * | 1       | everything up to issue 14: hello/challenge/netmap/delta/resume, the challenge's       |
 * |         | `path-state` and `routes` features, virtual-device lists (optional fields older       |
 * |         | agents ignore). Brokers of version 1 refuse any other version (close 4426, HTTP 400). |
 * | 2       | brokers accept any version >= MIN_CAPABILITY_VERSION and announce theirs (challenge  |
 * |         | and relay-welcome `capabilityVersion`, info `capabilityVersion`); agents and relays  |
 * |         | fall back to 1 against a broker that refuses 2.                                       |
 * | 3       | the broker may send a `netmap` snapshot as a binary frame of raw DEFLATE holding the  |
 * |         | same JSON text, and list peers that only came online or went offline in a delta's     |
 * |         | `online` / `offline` instead of upserting them; agents take broker frames up to       |
 * |         | MAX_SERVER_FRAME_BYTES (control-frame.ts).                                            |
 *
 * Bump it when a message or field is added that an older peer cannot ignore, and send that only to
 * a peer whose version (or challenge feature) says it takes it.
 */
export const CAPABILITY_VERSION = 3;

/** From this version on: compressed snapshots and presence lists in deltas (the table above). */
export const COMPACT_NETMAP_CAPABILITY = 3;

/** The oldest version a broker still serves: agents and relays of it keep working across an upgrade. */
export const MIN_CAPABILITY_VERSION = 1;

/** What a broker from before capability versions takes (it wants exactly this). */
export const LEGACY_CAPABILITY_VERSION = 1;

/**
 * @deprecated The wire field `protocolVersion` now carries the sender's capability version: use
 * CAPABILITY_VERSION (kept for tests and tools that still import this name).
 */
export const PROTOCOL_VERSION = CAPABILITY_VERSION;

/** Why a broker refuses a peer's version (too old), or undefined when it serves it. */
export function capabilityRefusal(version: number): string | undefined {
  if (version >= MIN_CAPABILITY_VERSION) return undefined;
  return (
    `protocol version ${version} is too old: this broker speaks capability version ${CAPABILITY_VERSION} ` +
    `and serves ${MIN_CAPABILITY_VERSION} and newer`
  );
}

/** Whether an HTTP refusal is a broker's protocol version check (an older broker: 400 `protocol_mismatch`). */
export function isVersionRefusal(status: number, code: string | undefined, message: string): boolean {
  if (status !== 400 && status !== 426) return false;
  return code === 'protocol_mismatch' || /protocol version/i.test(message);
}

/**
 * Which capability version to send to each broker instance (by URL and address): ours, or
 * LEGACY_CAPABILITY_VERSION for one that refused ours, until the process restarts or that broker
 * announces a version of its own (only brokers of 2 and newer do).
 */
export class CapabilityFallback {
  private readonly legacy = new Set<string>();
  private last: { key: string; version: number } | null = null;

  /** `onFallback`: a broker refused our version and gets the legacy one from now on (to log it, once). */
  constructor(private readonly onFallback: (broker: string) => void = () => {}) {}

  /** The version for a hello to this broker (remembered: `refused` is about the last one). */
  helloVersion(target: { url: string; address: string | null } | null): number {
    this.last = null;
    if (!target) return CAPABILITY_VERSION;
    const key = keyOf(target);
    const version = this.legacy.has(key) ? LEGACY_CAPABILITY_VERSION : CAPABILITY_VERSION;
    this.last = { key, version };
    return version;
  }

  /**
   * The broker of the last hello refused its version. True: retry it at once with the legacy version
   * (the first refusal of a version above it); false: nothing lower to try.
   */
  refused(): boolean {
    const last = this.last;
    if (!last || last.version <= LEGACY_CAPABILITY_VERSION) return false;
    this.legacy.add(last.key);
    this.onFallback(last.key);
    return true;
  }

  /** The broker of the last hello announced its version (absent: a broker of version 1). */
  announced(version: number | undefined): void {
    if (this.last && version !== undefined && version > LEGACY_CAPABILITY_VERSION)
      this.legacy.delete(this.last.key);
  }
}

function keyOf(target: { url: string; address: string | null }): string {
  return target.address === null ? target.url : `${target.url} (${target.address})`;
}
