import type { NetmapMessage, NetmapVirtual } from '@trellis/proto';
import { DeflateStream } from './deflate-pieces';
import { Json, jsonFrame } from './json-frame';
import { accessEntry, type SnapshotContext } from './netmap-batch';
import type { Chunk, NetmapChunks } from './netmap-chunks';
import type { PeerRelation } from './netmap-policy';

/** The fields a snapshot has before its peers, which are the viewer's own. */
export type SnapshotHead = Pick<NetmapMessage, 'type' | 'serial' | 'resume' | 'self'>;

/**
 * The `netmap` frame of `viewerId` as raw DEFLATE: the same message as snapshotFrame (fields in
 * the same order, peers grouped by chunk), spliced from each chunk's compressed text. Only the
 * head and the chunk holding the viewer (which must leave it out) are written per device, stored.
 */
export function compressedSnapshot(
  ctx: SnapshotContext,
  chunkList: NetmapChunks,
  head: SnapshotHead,
  viewerId: string,
  viewerCls: number,
): Buffer {
  const out = new DeflateStream();
  const open = jsonFrame<SnapshotHead>(head);
  out.text(`${open.slice(0, -1)},"peers":[`);
  const related: Array<{ chunks: readonly Chunk[]; rel: PeerRelation }> = [];
  const virtual: Json<NetmapVirtual>[] = [];
  let first = true;
  const separate = () => {
    if (!first) out.text(',');
    first = false;
  };
  for (const cls of ctx.members.keys()) {
    const rel = ctx.relation(viewerCls, cls);
    if (rel === null) continue;
    const chunks = chunkList.of(cls);
    related.push({ chunks, rel });
    for (const chunk of chunks) {
      if (chunk.ids.has(viewerId)) {
        for (const id of chunk.ids) {
          if (id === viewerId) continue;
          const f = ctx.fragmentOf(id);
          if (f.virtual) virtual.push(f.json);
          else {
            separate();
            out.text(f.json.text);
          }
        }
        continue;
      }
      const parts = chunkList.parts(chunk);
      virtual.push(...parts.virtual);
      if (parts.peers === null) continue;
      separate();
      out.piece(parts.peers);
    }
  }
  out.text('],"access":[');
  let firstEntry = true;
  for (const { chunks, rel } of related) {
    const others = chunks.reduce((n, c) => n + c.ids.size - (c.ids.has(viewerId) ? 1 : 0), 0);
    if (others === 0) continue;
    out.text(firstEntry ? '{"peers":[' : ',{"peers":[');
    firstEntry = false;
    first = true;
    for (const chunk of chunks) {
      if (chunk.ids.has(viewerId)) {
        for (const id of chunk.ids) {
          if (id === viewerId) continue;
          separate();
          out.text(JSON.stringify(id));
        }
        continue;
      }
      separate();
      out.piece(chunkList.parts(chunk).ids);
    }
    // The entry's other fields, as accessEntry writes them after `peers`.
    out.text(`]${JSON.stringify(accessEntry([], rel)).slice('{"peers":[]'.length)}`);
  }
  out.text(']');
  if (virtual.length > 0) out.text(`,"virtual":${Json.array(virtual).text}`);
  out.text('}');
  return out.finish();
}
