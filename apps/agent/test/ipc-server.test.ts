import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_IPC_LINE_BYTES } from '@trellis/proto';
import pino from 'pino';
import { ipcCall } from '../src/ipc/ipc-client';
import { IpcServer } from '../src/ipc/ipc-server';

/** Sends raw bytes and collects answer lines until `count` arrived. */
function raw(path: string, data: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    s.on('connect', () => s.write(data));
    s.on('data', (c) => {
      buf += c.toString();
      const lines = buf.split('\n').filter(Boolean);
      if (lines.length >= count) {
        s.destroy();
        resolve(lines);
      }
    });
    s.on('error', reject);
  });
}

describe('IpcServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-ipc-'));
  const path = join(dir, 'trellisd.sock');
  const server = new IpcServer(
    path,
    async (req) => {
      if (req.op === 'down') throw new Error('nothing to take down');
      return { ok: true, message: `did ${req.op}` };
    },
    pino({ level: 'silent' }),
  );

  beforeAll(async () => {
    writeFileSync(path, ''); // a stale file from a crashed daemon
    await server.listen();
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on a 0600 socket, replacing a stale file', () => {
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('answers each JSON line in order, and errors as {ok:false}', async () => {
    expect(await ipcCall(path, { op: 'status' })).toEqual({ ok: true, message: 'did status' });
    expect(await ipcCall(path, { op: 'down' })).toEqual({ ok: false, error: 'nothing to take down' });
    const lines = await raw(path, '{"op":"status"}\nnot json\n{"op":"explode"}\n', 3);
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { ok: true, message: 'did status' },
      { ok: false, error: 'request is not JSON' },
      { ok: false, error: expect.stringMatching(/^bad request/) },
    ]);
  });

  it('refuses an oversized line', async () => {
    const lines = await raw(path, 'x'.repeat(MAX_IPC_LINE_BYTES + 10), 1);
    expect(JSON.parse(lines[0]!)).toEqual({
      ok: false,
      error: `request longer than ${MAX_IPC_LINE_BYTES} bytes`,
    });
  });

  it('refuses to start a second daemon on a live socket', async () => {
    const second = new IpcServer(path, async () => ({ ok: true }), pino({ level: 'silent' }));
    await expect(second.listen()).rejects.toThrow(/another trellisd is already listening/);
  });

  it('the client explains a missing daemon', async () => {
    await expect(ipcCall(join(dir, 'absent.sock'), { op: 'status' })).rejects.toThrow(
      /trellisd is not running/,
    );
  });
});
