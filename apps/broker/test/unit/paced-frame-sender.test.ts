import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { type FrameSocket, PacedFrameSender } from '../../src/control/paced-frame-sender';

type Sent = { data: string; fin: boolean; done?: (err?: Error) => void };

/** Records sends; the test decides when each fragment "reaches the socket". */
function fakeSocket(): FrameSocket & { sent: Sent[]; readyState: number } {
  const sent: Sent[] = [];
  return {
    sent,
    OPEN: 1,
    readyState: 1,
    send: ((data: string | Buffer, opts?: unknown, cb?: (err?: Error) => void) => {
      const fin =
        typeof opts === 'object' && opts !== null ? (opts as { fin?: boolean }).fin !== false : true;
      sent.push({ data: data.toString(), fin, done: cb });
    }) as FrameSocket['send'],
  } as FrameSocket & { sent: Sent[]; readyState: number };
}

describe('PacedFrameSender', () => {
  it('sends small frames at once, in order', () => {
    const ws = fakeSocket();
    const s = new PacedFrameSender(ws, 4, 10);
    s.send('a');
    s.send('bb');
    expect(ws.sent.map((x) => x.data)).toEqual(['a', 'bb']);
  });

  it('paces a large frame one fragment per completed write and holds later frames back', () => {
    const ws = fakeSocket();
    const s = new PacedFrameSender(ws, 4, 10);
    s.send('0123456789ABCD');
    s.send('next');
    expect(ws.sent.map((x) => x.data)).toEqual(['0123']);
    expect(s.pending).toBe(1);
    ws.sent[0]!.done!();
    ws.sent[1]!.done!();
    ws.sent[2]!.done!();
    expect(ws.sent.map((x) => [x.data, x.fin])).toEqual([
      ['0123', false],
      ['4567', false],
      ['89AB', false],
      ['CD', true],
    ]);
    ws.sent[3]!.done!();
    expect(ws.sent.map((x) => x.data).slice(-1)).toEqual(['next']);
    expect(s.pending).toBe(0);
  });

  it('drops what is queued once the socket has closed or a write failed', () => {
    const ws = fakeSocket();
    const s = new PacedFrameSender(ws, 4, 10);
    s.send('0123456789ABCD');
    s.send('next');
    ws.sent[0]!.done!(new Error('EPIPE'));
    expect(s.pending).toBe(0);
    ws.readyState = 3;
    s.send('late');
    expect(ws.sent).toHaveLength(1);
  });

  it('sends binary frames (compressed snapshots) as binary, paced like text', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const big = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    wss.on('connection', (ws) => {
      const s = new PacedFrameSender(ws);
      s.send(Buffer.from([1, 2, 3]));
      s.send(big);
      s.send('text');
    });
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    await new Promise<void>((resolve) =>
      client.on('message', (data: Buffer, binary) => {
        got.push({ data, binary });
        if (got.length === 3) resolve();
      }),
    );
    expect(got.map((g) => g.binary)).toEqual([true, true, false]);
    expect([...got[0]!.data]).toEqual([1, 2, 3]);
    expect(got[1]!.data.equals(big)).toBe(true);
    expect(got[2]!.data.toString()).toBe('text');
    client.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  it('delivers a large message intact and in order over a real WebSocket', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const big = JSON.stringify({
      peers: Array.from({ length: 5000 }, (_, i) => ({ i, name: `peer-${i}-ü` })),
    });
    wss.on('connection', (ws) => {
      const s = new PacedFrameSender(ws);
      s.send('first');
      s.send(big);
      s.send('last');
    });
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    const got: string[] = [];
    await new Promise<void>((resolve) =>
      client.on('message', (data) => {
        got.push(data.toString());
        if (got.length === 3) resolve();
      }),
    );
    expect(got[0]).toBe('first');
    expect(got[1]).toBe(big);
    expect(got[2]).toBe('last');
    client.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
});
