import type { NetmapVirtual } from '@trellis/proto';
import { compressedPiece, type DeflatePiece } from './deflate-pieces';
import type { Json } from './json-frame';
import type { Fragment } from './netmap-batch';

/**
 * Devices per chunk: small enough that recompressing a chunk after one device's change costs a
 * fraction of a millisecond, large enough that each chunk compresses well on its own.
 */
export const CHUNK_DEVICES = 64;

/** A chunk's parts as snapshots splice them (compressed ones built on first use after a change). */
export interface ChunkParts {
  /** `peer,peer,…` (virtual devices apart), compressed; null: none. */
  peers: DeflatePiece | null;
  /** `"id","id",…` of every device in it, compressed. */
  ids: DeflatePiece;
  virtual: Json<NetmapVirtual>[];
}

/** Some devices of one class. */
export class Chunk {
  readonly ids = new Set<string>();
  private parts: ChunkParts | undefined;

  constructor(readonly cls: number) {}

  /** Something in it changed: its parts are redone on next use. */
  dirty(): void {
    this.parts = undefined;
  }

  partsWith(fragmentOf: (id: string) => Fragment): ChunkParts {
    if (this.parts) return this.parts;
    const peers: string[] = [];
    const virtual: Json<NetmapVirtual>[] = [];
    for (const id of this.ids) {
      const f = fragmentOf(id);
      if (f.virtual) virtual.push(f.json);
      else peers.push(f.json.text);
    }
    this.parts = {
      peers: peers.length > 0 ? compressedPiece(peers.join(',')) : null,
      ids: compressedPiece([...this.ids].map((id) => JSON.stringify(id)).join(',')),
      virtual,
    };
    return this.parts;
  }
}

/**
 * The devices of each policy class in chunks whose compressed text is kept between snapshots: a
 * snapshot for a device with capability 3 is spliced from them, so thousands of devices connecting
 * at once cost one compression per chunk and change, not one per device.
 */
export class NetmapChunks {
  private readonly byClass = new Map<number, Chunk[]>();
  private readonly chunkOf = new Map<string, Chunk>();

  constructor(private readonly fragmentOf: (id: string) => Fragment) {}

  /** Chunks of `cls`, in order (none: an empty list). */
  of(cls: number): readonly Chunk[] {
    return this.byClass.get(cls) ?? [];
  }

  parts(chunk: Chunk): ChunkParts {
    return chunk.partsWith(this.fragmentOf);
  }

  /** The chunk holding `id`. */
  holding(id: string): Chunk | undefined {
    return this.chunkOf.get(id);
  }

  /** Moves `id` out of its class's chunks into those of `to` (undefined: none). */
  move(id: string, to: number | undefined): void {
    const from = this.chunkOf.get(id);
    if (from) {
      from.ids.delete(id);
      from.dirty();
      this.chunkOf.delete(id);
      if (from.ids.size === 0) {
        const list = this.byClass.get(from.cls)!;
        list.splice(list.indexOf(from), 1);
        if (list.length === 0) this.byClass.delete(from.cls);
      }
    }
    if (to === undefined) return;
    let list = this.byClass.get(to);
    if (!list) {
      list = [];
      this.byClass.set(to, list);
    }
    // The first chunk with room takes it, so removals leave no lasting gaps.
    let chunk = list.find((c) => c.ids.size < CHUNK_DEVICES);
    if (!chunk) {
      chunk = new Chunk(to);
      list.push(chunk);
    }
    chunk.ids.add(id);
    chunk.dirty();
    this.chunkOf.set(id, chunk);
  }

  /** `id`'s fragment changed. */
  touched(id: string): void {
    this.chunkOf.get(id)?.dirty();
  }

  clear(): void {
    this.byClass.clear();
    this.chunkOf.clear();
  }
}
