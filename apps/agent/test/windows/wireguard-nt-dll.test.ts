import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import {
  AdapterLogState,
  AdapterState,
  Win32Error,
  wireGuardNtTypes,
} from '../../src/wireguard/wireguard-nt-api';
import { adapterGuid, decodeState, encodeState } from '../../src/wireguard/wireguard-nt-config';
import {
  bindWireGuardNt,
  defaultWireGuardDllPath,
  type LoggerCallback,
  type NativeWireGuardNt,
} from '../../src/wireguard/wireguard-nt-dll';

/**
 * The real koffi path: the prototypes of wireguard-nt-api.ts bound to a C stand-in for
 * wireguard.dll (wireguard-nt-fake-dll.c, compiled here with the machine's cc), so strings,
 * the GUID struct, buffers, out-parameters, the logger callback and worker-thread calls all
 * cross a real FFI boundary. Only wireguard.dll itself and GetLastError are Windows-only.
 */
const { koffi, t } = wireGuardNtTypes();
const dir = mkdtempSync(join(tmpdir(), 'trellis-wgnt-'));
const libPath = join(dir, 'libwireguard-fake.so');
execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', libPath, join(__dirname, 'wireguard-nt-fake-dll.c')]);
const lib = koffi.load(libPath);
const native = {} as NativeWireGuardNt;
for (const name of Object.keys(t.prototypes) as Array<keyof NativeWireGuardNt>)
  native[name] = lib.func(t.prototypes[name]);
const probe = <T>(name: string, result: string): T => lib.func(`${result} ${name}(void)`)() as T;

const logLines: Array<{ level: number; msg: string; source: string }> = [];
const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) });
const api = bindWireGuardNt(
  native,
  () => koffi.errno(),
  (cb: LoggerCallback) => koffi.register(cb, koffi.pointer(t.LOGGER_CALLBACK)),
  logger,
);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wireguard-nt bindings through koffi (C stand-in for wireguard.dll)', () => {
  it('creates an adapter: UTF-16 names, the GUID struct, and the DLL logging through the callback', async () => {
    const guid = adapterGuid('trellis0');
    const adapter = await api.createAdapter('trellis0', 'Trellis', guid);
    expect(adapter).toBeTruthy();
    expect(probe<string>('fake_last_name', 'const char *')).toBe('trellis0');
    expect(probe<string>('fake_last_type', 'const char *')).toBe('Trellis');
    expect(probe<number>('fake_guid_data1', 'uint32_t')).toBe(guid.readUInt32LE(0));
    expect(probe<number>('fake_guid_data4_7', 'uint8_t')).toBe(guid[15]);
    expect(logLines).toContainEqual(
      expect.objectContaining({ level: 40, msg: 'created', source: 'wireguard-nt' }),
    );
    await api.closeAdapter(adapter);
  });

  it('turns NULL and FALSE into errors carrying the last error; a missing adapter opens as null', async () => {
    await expect(api.createAdapter('fail', 'Trellis', adapterGuid('fail'))).rejects.toMatchObject({
      fn: 'WireGuardCreateAdapter',
      code: 5,
    });
    expect(await api.openAdapter('absent')).toBeNull();
    const adapter = await api.createAdapter('trellis0', 'Trellis', adapterGuid('trellis0'));
    await expect(api.setAdapterState(adapter, 7 as AdapterState)).rejects.toMatchObject({ code: 87 });
    await api.setAdapterState(adapter, AdapterState.UP);
    await api.closeAdapter(adapter);
  });

  it('reads the LUID out-parameter and sets logging on a worker thread', async () => {
    const adapter = await api.createAdapter('trellis0', 'Trellis', adapterGuid('trellis0'));
    expect(await api.getAdapterLuid(adapter)).toBe(0x35000001000000n);
    await api.setAdapterLogging(adapter, AdapterLogState.ON);
    expect(probe<number>('fake_logging_state', 'int')).toBe(AdapterLogState.ON);
    const closes = probe<number>('fake_close_calls', 'int');
    await api.closeAdapter(adapter);
    expect(probe<number>('fake_close_calls', 'int')).toBe(closes + 1);
  });

  it('passes the configuration buffer and grows the read buffer on ERROR_MORE_DATA', async () => {
    const adapter = await api.createAdapter('trellis0', 'Trellis', adapterGuid('trellis0'));
    // 30 peers need 4880 bytes, more than the first 4096-byte read.
    const state = {
      privateKey: Buffer.alloc(32, 0x40).toString('base64'),
      listenPort: 51820,
      peers: Array.from({ length: 30 }, (_, i) => ({
        publicKey: Buffer.alloc(32, i + 1).toString('base64'),
        endpoint: `10.0.0.${i + 1}:51820`,
        allowedIps: [`100.64.0.${i + 2}/32`],
        persistentKeepalive: 25,
        lastHandshakeSec: 1_700_000_000 + i,
        rxBytes: i * 1000,
        txBytes: 2 ** 40 + i,
      })),
    };
    const config = encodeState(state);
    await api.setConfiguration(adapter, config);
    const before = probe<number>('fake_get_calls', 'int');
    const back = await api.getConfiguration(adapter);
    expect(probe<number>('fake_get_calls', 'int') - before).toBe(2);
    expect(back.equals(config)).toBe(true);
    expect(decodeState(back)).toEqual(state);
    expect(Win32Error.MORE_DATA).toBe(234);
    await api.closeAdapter(adapter);
  });

  it('finds wireguard.dll next to the executable unless TRELLIS_WIREGUARD_DLL says otherwise', () => {
    expect(defaultWireGuardDllPath({ TRELLIS_WIREGUARD_DLL: 'D:\\wg\\wireguard.dll' })).toBe(
      'D:\\wg\\wireguard.dll',
    );
    expect(defaultWireGuardDllPath({})).toBe(join(process.execPath, '..', 'wireguard.dll'));
  });
});
