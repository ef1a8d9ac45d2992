import type { DeltaMessage, NetmapPeer } from '@trellis/proto';
import type { Json, Spliced } from './json-frame';

/** What a delta says besides its type and serial; built once per batch and viewer class. */
export type DeltaBody = Spliced<Omit<DeltaMessage, 'type' | 'serial'>>;

/** Changes collected since the last flush: last write wins per device. */
export interface ChangeBatch {
  upserts: Map<string, Json<NetmapPeer>>;
  removes: Set<string>;
  /** Devices whose view of themselves (reflexive addresses, NAT type) changed. */
  selfChanged: Set<string>;
  /**
   * Viewer classes that could see each changed device in any state it had during the batch, before
   * its last change: a device that connected meanwhile got a snapshot of one of those states.
   */
  seenDuring: Map<string, Set<number>>;
  /** Devices that need their whole netmap again: their own class changed. */
  resnapshot: Set<string>;
  /** Delta bodies for viewers outside the batch, one per viewer class (null: nothing to send). */
  sharedBodies: Map<number, DeltaBody | null>;
}

export function emptyBatch(): ChangeBatch {
  return {
    upserts: new Map(),
    removes: new Set(),
    selfChanged: new Set(),
    seenDuring: new Map(),
    resnapshot: new Set(),
    sharedBodies: new Map(),
  };
}

/** The frame a connected device gets for a batch: a delta, or its whole netmap again. */
export type BatchFrame = { type: 'netmap' | 'delta'; frame: string };
