import type { IssuePath } from './locations';
import type { PortSet } from './ports';
import type { Atom, TestTarget } from './selectors';

/** A device as the policy sees it. `user`: its owner's email, absent for nobody's (tagged) devices. */
export interface PolicyDevice {
  id: string;
  name: string;
  address: string;
  tags: readonly string[];
  user?: string;
  /** Prefixes it serves as a gateway (approved and advertised); EXIT_ROUTE for an exit node. */
  routes?: readonly string[];
}

/** Where a part of the policy text starts (1-based). */
export interface SourceSpot {
  readonly line: number;
  readonly column: number;
}

/** A named block of the overlay; `parent` is the index of the smallest block around it. */
export interface PolicyBlock extends SourceSpot {
  readonly name: string;
  readonly cidr: string;
  readonly base: number;
  readonly bits: number;
  readonly parent: number | null;
}

export interface PolicyAssociation extends SourceSpot {
  readonly index: number;
  /** Block indexes. */
  readonly a: number;
  readonly b: number;
  readonly text: string;
}

/** A rule with its groups expanded into atoms. */
export interface PolicyRule extends SourceSpot {
  readonly index: number;
  /** A side matches a device when any of its sets holds an atom of the device (groups stay shared). */
  readonly src: readonly ReadonlySet<Atom>[];
  readonly dst: readonly ReadonlySet<Atom>[];
  /**
   * Routed destinations of `dst`, sorted: prefixes outside the overlay, reached through gateways
   * that serve an overlapping subnet route. EXIT_ROUTE for `*` and 0.0.0.0/0 (every route of every
   * gateway, the exit route too); INTERNET for autogroup:internet (exit nodes' exit route only).
   */
  readonly dstRoutes: readonly string[];
  readonly ports: PortSet;
  /** The rule's own text, on one line. */
  readonly text: string;
}

/** One expectation of the file's `tests`. */
export interface PolicyTestCase extends SourceSpot {
  readonly src: string;
  readonly expect: 'accept' | 'deny';
  readonly target: TestTarget;
  readonly text: string;
  readonly path: IssuePath;
}

/** A bare device name in a group or rule: a warning when no device has it. */
export interface DeviceNameRef extends SourceSpot {
  readonly name: string;
  readonly path: IssuePath;
}

/** Who may have advertised routes approved without an admin: selector sets as a rule's src. */
export interface AutoApprovers {
  readonly routes: readonly { readonly prefix: string; readonly sets: readonly ReadonlySet<Atom>[] }[];
  readonly exitNode: readonly ReadonlySet<Atom>[];
}

/** A parsed, valid policy. The text is kept verbatim, comments and all. */
export interface Policy {
  readonly text: string;
  /** Every group with nested groups expanded. */
  readonly groups: ReadonlyMap<string, ReadonlySet<Atom>>;
  /** Declared tags and their owners as written (`group:X`, `user:EMAIL`, lower-cased). */
  readonly tagOwners: ReadonlyMap<string, readonly string[]>;
  readonly blocks: readonly PolicyBlock[];
  readonly associations: readonly PolicyAssociation[];
  readonly rules: readonly PolicyRule[];
  readonly tests: readonly PolicyTestCase[];
  readonly autoApprovers: AutoApprovers;
  readonly deviceNames: readonly DeviceNameRef[];
}
