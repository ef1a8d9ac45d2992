import { decodeBatchFrame, encodeBatchFrames, RELAY_TCP_MAX_BATCH_FRAME } from '@trellis/proto';
import fc from 'fast-check';
import WebSocket from 'ws';

/** ws's frame parser and builder (exported at runtime, not typed by @types/ws). */
interface WsReceiver {
  write(chunk: Buffer, callback: () => void): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
const { Receiver, Sender } = WebSocket as unknown as {
  Receiver: new (options: {
    isServer: boolean;
    maxPayload: number;
    allowSynchronousEvents: boolean;
  }) => WsReceiver;
  Sender: {
    frame(
      data: Buffer,
      options: {
        fin: boolean;
        opcode: number;
        mask: boolean;
        readOnly: boolean;
        generateMask?: (m: Buffer) => void;
      },
    ): Buffer[];
  };
};
const BINARY = 2;

/**
 * The relay parses what an agent wrote as the TCP stream delivers it: any split of the bytes. Each
 * batched message is framed as the agent's ws client frames it (zero mask, or ws's random one as an
 * agent built otherwise would), the stream cut at random points and fed to ws's parser as the relay
 * configures it; every packet must come out whole and in order.
 */
describe('batched relay frames over a chunked WebSocket stream', () => {
  it('any packets, any chunking: the same packets in the same order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 2000 }), { minLength: 1, maxLength: 80 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (packets, cuts, zeroMask) => {
          const wire = Buffer.concat(
            encodeBatchFrames(packets, 8192).flatMap((message) =>
              Sender.frame(message, {
                fin: true,
                opcode: BINARY,
                mask: true,
                readOnly: false,
                ...(zeroMask ? { generateMask: (m: Buffer) => m.fill(0) } : {}),
              }),
            ),
          );
          const receiver = new Receiver({
            isServer: true,
            maxPayload: RELAY_TCP_MAX_BATCH_FRAME,
            allowSynchronousEvents: true,
          });
          const got: Buffer[] = [];
          receiver.on('message', (data, isBinary) => {
            expect(isBinary).toBe(true);
            expect(decodeBatchFrame(data, (p) => got.push(Buffer.from(p)))).toBe(true);
          });
          receiver.on('error', (err) => {
            throw err;
          });
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const size = cuts[i % cuts.length]!;
            await new Promise<void>((resolve) =>
              receiver.write(wire.subarray(at, at + size), () => resolve()),
            );
            at += size;
          }
          expect(got).toEqual(packets.map((p) => Buffer.from(p)));
        },
      ),
      { numRuns: 60 },
    );
  });
});
