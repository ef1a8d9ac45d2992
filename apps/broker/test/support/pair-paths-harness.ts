import {
  type PathReportMessage,
  type PunchMessage,
  RelayPathMessage,
  RelayReleaseMessage,
} from '@trellis/proto';
import pino from 'pino';
import { PairPathDriver, type PairPathTimings } from '../../src/pair-paths/pair-path-driver';
import type { PairDevice } from '../../src/pair-paths/pair-types';
import type { RelayRttTable } from '../../src/pair-paths/relay-choice';
import { type FakeRelay, FakeRelayDirectory } from './fake-relay-directory';

export const ACCOUNT = 'account-1';

type RelayMsg = RelayPathMessage | RelayReleaseMessage;

/**
 * One account's PairPathDriver under jest's fake timers, with a fake relay directory and the
 * devices' netmap views in a map the test edits. Relay messages must parse with the agent's schema.
 */
export function pairPaths(opts: {
  devices: PairDevice[];
  reflectorsRun?: boolean;
  rtts?: Map<string, RelayRttTable>;
  controlRtt?: (id: string) => number | null;
  seenSince?: (publicKey: string, since: number) => readonly string[] | null;
  relays?: boolean;
  timings?: PairPathTimings;
}) {
  const devices = new Map(opts.devices.map((d) => [d.id, d]));
  const sent: Array<{ to: string; msg: RelayMsg }> = [];
  const punches: Array<{ to: string; msg: PunchMessage }> = [];
  const directory = new FakeRelayDirectory();
  const driver = new PairPathDriver({
    accountId: ACCOUNT,
    send: (to, msg) => {
      if (msg.type === 'punch') punches.push({ to, msg });
      else if (msg.type === 'relay') sent.push({ to, msg: RelayPathMessage.parse(msg) });
      else sent.push({ to, msg: RelayReleaseMessage.parse(msg) });
    },
    rttOf: (id) => opts.controlRtt?.(id) ?? null,
    relayRtts: (id) => opts.rtts?.get(id),
    ...(opts.seenSince ? { reflexiveSeenSince: opts.seenSince } : {}),
    reflectorsRun: opts.reflectorsRun ?? false,
    ...(opts.relays === false ? {} : { directory }),
    logger: pino({ level: 'silent' }),
    timings: {
      udpWaitMs: 1_500,
      directGraceMs: 10_000,
      offlineGraceMs: 15_000,
      retryMs: 10_000,
      settleMs: 100,
      startDelayMs: 300,
      backoffInitialMs: 5_000,
      ...opts.timings,
    },
  });
  const view = (id: string) => {
    const d = devices.get(id);
    if (!d) throw new Error(`no device ${id} in the test`);
    return d;
  };
  return {
    driver,
    directory,
    devices,
    sent,
    punches,
    online: (id: string) => driver.online(view(id)),
    changed: (id: string) => driver.changed(view(id)),
    offline: (id: string) => driver.offline(id),
    removed: (id: string) => driver.removed(id),
    report: (from: string, r: PathReportMessage) => driver.pathReport(from, r),
    /** `from`'s agent wants a path to `to` (WireGuard has packets for it). */
    want: (from: string, to: string, relayed = false) => driver.want(from, to, relayed),
    observed: (id: string) => driver.reflexiveObserved(id, view(id).publicKey),
    /** Both devices come online together, one wants a path to the other, and the directory answers. */
    async bothOnline(a: string, b: string) {
      driver.online(view(a));
      driver.online(view(b));
      driver.want(a, b);
      await settle();
    },
    async relayComesUp(relay: FakeRelay) {
      directory.up(relay);
      driver.relayUp();
      await settle();
    },
    /** The relay stays away past the directory's grace. */
    async relayGone(relay: FakeRelay) {
      directory.down(relay);
      driver.relayDown(relay.id);
      await settle();
    },
    relaysTo: (to: string) =>
      sent.filter((s) => s.to === to && s.msg.type === 'relay').map((s) => s.msg as RelayPathMessage),
    releasesTo: (to: string) =>
      sent
        .filter((s) => s.to === to && s.msg.type === 'relay-release')
        .map((s) => s.msg as RelayReleaseMessage),
  };
}

/** Lets the fake directory's answers (microtasks) arrive without moving the clock. */
export const settle = () => jest.advanceTimersByTimeAsync(0);

export function pathReport(
  result: PathReportMessage['result'],
  peerId: string,
  attemptId = 'local:1',
): PathReportMessage {
  return { type: 'path', peerId, attemptId, result, elapsedMs: 10 };
}
