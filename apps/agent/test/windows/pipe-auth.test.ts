import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ipcCall } from '../../src/ipc/ipc-client';
import { IpcServer, isNamedPipe } from '../../src/ipc/ipc-server';
import {
  clientGate,
  keyDirAclArgs,
  loadClientGate,
  PIPE_AUTH_DIR,
  PIPE_KEY_FILE,
  PipeAuthority,
  signedInUserSid,
  startPipeAuthority,
  WINDOWS_PIPE_PATH,
} from '../../src/ipc/pipe-auth-windows';
import { FakeWindows } from './fake-windows';
import { expectGolden } from './golden';

const silent = pino({ level: 'silent' });
const USER = { user: 'LAPTOP\\ada', sid: 'S-1-5-21-1004336348-1177238915-682003330-1001' };
const OTHER = { user: 'LAPTOP\\bob', sid: 'S-1-5-21-1004336348-1177238915-682003330-1002' };

/** Sends lines and collects answer lines until `count` arrived or the server closed. */
function raw(path: string, lines: string[], count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const done = () => resolve(buf.split('\n').filter(Boolean));
    s.on('connect', () => s.write(lines.map((l) => `${l}\n`).join('')));
    s.on('data', (c) => {
      buf += c.toString();
      if (buf.split('\n').filter(Boolean).length >= count) {
        s.destroy();
        done();
      }
    });
    s.on('end', done);
    s.on('error', reject);
  });
}

describe('the control pipe key (Administrators and the signed-in user)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-pipe-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('locks the directory with icacls before the key is written, and makes a new key per user', async () => {
    const w = new FakeWindows();
    w.consoleUser = USER;
    const keyFile = join(dir, PIPE_AUTH_DIR, PIPE_KEY_FILE);
    const keyExistedAtIcacls: boolean[] = [];
    const run = w.run.bind(w);
    w.run = async (command, args) => {
      if (command === 'icacls') keyExistedAtIcacls.push(existsSync(keyFile));
      return run(command, args);
    };
    const auth = new PipeAuthority(dir, w, silent);
    await auth.refresh();
    const first = readFileSync(keyFile, 'utf8');
    expect(first).toMatch(/^[0-9a-f]{64}\n$/);
    await auth.refresh(); // same user: nothing
    w.consoleUser = OTHER;
    await auth.refresh();
    expect(readFileSync(keyFile, 'utf8')).not.toBe(first);
    w.consoleUser = null;
    await auth.refresh();
    expect(keyExistedAtIcacls).toEqual([false, false, false]);
    expectGolden(
      'pipe-key-acl.txt',
      w.transcript().replaceAll(join(dir, PIPE_AUTH_DIR), 'C:\\ProgramData\\Trellis\\ipc'),
    );
  });

  it('builds the icacls argv from well-known SIDs and refuses anything that is not a SID', () => {
    expect(keyDirAclArgs('C:\\ProgramData\\Trellis\\ipc', USER.sid)).toEqual([
      'C:\\ProgramData\\Trellis\\ipc',
      '/inheritance:r',
      '/grant:r',
      '*S-1-5-18:(OI)(CI)F',
      '*S-1-5-32-544:(OI)(CI)F',
      `*${USER.sid}:(OI)(CI)RX`,
    ]);
    for (const bad of ['Everyone', 'S-1-1-0:F /grant *S-1-1-0', 'S-1-5-21-1 /T', '*S-1-5-18']) {
      expect(() => keyDirAclArgs('C:\\x', bad)).toThrow(/not a SID/);
    }
  });

  it('reads the signed-in user from the console session (none: null)', async () => {
    const w = new FakeWindows();
    expect(await signedInUserSid(w)).toBeNull();
    w.consoleUser = USER;
    expect(await signedInUserSid(w)).toBe(USER.sid);
    w.consoleUser = { user: 'x', sid: 'S-1-1-0; calc' };
    await expect(signedInUserSid(w)).rejects.toThrow(/not a SID/);
  });

  it('tells the CLI why it cannot read the key', async () => {
    await expect(loadClientGate(dir)).rejects.toThrow(/is trellisd running/);
  });
});

describe('the control pipe handshake, over a real socket', () => {
  let dir: string;
  let path: string;
  let auth: PipeAuthority;
  let server: IpcServer;
  const requests: string[] = [];
  const w = new FakeWindows();

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-pipe-'));
    path = join(dir, 'trellisd.sock');
    w.consoleUser = USER;
    auth = new PipeAuthority(dir, w, silent);
    await auth.refresh();
    requests.length = 0;
    server = new IpcServer(
      path,
      async (req) => {
        requests.push(req.op);
        return { ok: true, message: `did ${req.op}` };
      },
      silent,
      auth.gate(),
    );
    await server.listen();
  });
  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client that holds the key', async () => {
    const gate = await loadClientGate(dir);
    expect(await ipcCall(path, { op: 'status' }, 5000, gate)).toEqual({ ok: true, message: 'did status' });
    expect(requests).toEqual(['status']);
  });

  it('refuses a client without the handshake, and never runs its request', async () => {
    expect(await ipcCall(path, { op: 'down' }, 5000)).toEqual({
      ok: false,
      error: 'trellisd wants the control pipe handshake first',
    });
    // Lines after the refusal are not served either.
    const lines = await raw(path, ['{"op":"status"}', '{"op":"down"}'], 2);
    expect(lines).toHaveLength(1);
    expect(requests).toEqual([]);
  });

  it('refuses a client with a wrong key (or an old one: the signed-in user changed)', async () => {
    const stale = await loadClientGate(dir);
    const wrong = clientGate(Buffer.alloc(32, 7));
    await expect(ipcCall(path, { op: 'down' }, 5000, wrong)).rejects.toThrow(/not trellisd/);
    w.consoleUser = OTHER;
    await auth.refresh();
    await expect(ipcCall(path, { op: 'down' }, 5000, stale)).rejects.toThrow(/not trellisd/);
    expect(requests).toEqual([]);
    expect(await ipcCall(path, { op: 'status' }, 5000, await loadClientGate(dir))).toMatchObject({
      ok: true,
    });
  });

  it('refuses a forged proof after a genuine challenge', async () => {
    const hello = JSON.stringify({ pipeAuth: 'trellis-pipe-1', nonce: 'a'.repeat(64) });
    const forged = JSON.stringify({ pipeAuth: 'trellis-pipe-1', proof: 'b'.repeat(64) });
    const lines = await raw(path, [hello, forged, '{"op":"down"}'], 3);
    expect(JSON.parse(lines[0]!)).toMatchObject({ pipeAuth: 'trellis-pipe-1' });
    expect(JSON.parse(lines[1]!)).toEqual({
      ok: false,
      error: 'not allowed: only Administrators and the signed-in user may control trellisd',
    });
    expect(lines).toHaveLength(2);
    expect(requests).toEqual([]);
  });

  it("passes on the error of a server that knows no handshake (a Linux daemon's socket)", async () => {
    const plainPath = join(dir, 'plain.sock');
    const plain = new IpcServer(plainPath, async () => ({ ok: true }), silent);
    await plain.listen();
    try {
      const gate = await loadClientGate(dir);
      await expect(ipcCall(plainPath, { op: 'status' }, 5000, gate)).rejects.toThrow(/bad request/);
    } finally {
      await plain.close();
    }
  });

  it('sends no request to a program squatting the pipe (it cannot prove the key)', async () => {
    const squat = join(dir, 'squat.sock');
    const received: string[] = [];
    const squatter = createServer((s) => {
      s.on('data', (c) => {
        received.push(c.toString());
        s.write(
          `${JSON.stringify({ pipeAuth: 'trellis-pipe-1', nonce: 'c'.repeat(64), proof: 'd'.repeat(64) })}\n`,
        );
      });
    });
    await new Promise<void>((r) => squatter.listen(squat, r));
    try {
      const gate = await loadClientGate(dir);
      await expect(
        ipcCall(
          squat,
          { op: 'up', brokers: ['https://b.example'], setupKey: 'secret-setup-key' },
          5000,
          gate,
        ),
      ).rejects.toThrow(/not trellisd/);
      expect(received.join('')).not.toMatch(/secret-setup-key/);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});

describe('startPipeAuthority (the daemon side)', () => {
  it('makes the key for the signed-in user and gives the gate to serve with', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-pipe-'));
    const path = join(dir, 'trellisd.sock');
    const w = new FakeWindows();
    w.consoleUser = USER;
    const { gate, stop } = await startPipeAuthority(dir, w, silent);
    const server = new IpcServer(path, async () => ({ ok: true, message: 'hi' }), silent, gate);
    try {
      await server.listen();
      expect(await ipcCall(path, { op: 'status' }, 5000, await loadClientGate(dir))).toEqual({
        ok: true,
        message: 'hi',
      });
      expect(w.calls.filter((c) => c.command === 'icacls')[0]?.args.at(-1)).toBe(`*${USER.sid}:(OI)(CI)RX`);
    } finally {
      stop();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('named pipe paths', () => {
  it('tells a pipe from a socket file', () => {
    expect(WINDOWS_PIPE_PATH).toBe('\\\\.\\pipe\\trellisd');
    expect(isNamedPipe(WINDOWS_PIPE_PATH)).toBe(true);
    expect(isNamedPipe('\\\\?\\pipe\\other')).toBe(true);
    expect(isNamedPipe('/var/lib/trellis/trellisd.sock')).toBe(false);
    expect(isNamedPipe('C:\\ProgramData\\Trellis\\trellisd.sock')).toBe(false);
  });

  it('will not listen on a pipe without an authenticating gate', async () => {
    const server = new IpcServer(WINDOWS_PIPE_PATH, async () => ({}), silent);
    await expect(server.listen()).rejects.toThrow(/without an authenticating gate/);
  });
});
