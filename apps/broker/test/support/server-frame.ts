import { inflateRawSync } from 'node:zlib';
import { MAX_SERVER_FRAME_BYTES } from '@trellis/proto';

/** A broker frame's JSON text, as the agent reads it: a binary one (capability 3) is raw DEFLATE. */
export function serverFrameText(data: Buffer, isBinary: boolean): string {
  if (!isBinary) return data.toString('utf8');
  return inflateRawSync(data, { maxOutputLength: MAX_SERVER_FRAME_BYTES }).toString('utf8');
}
