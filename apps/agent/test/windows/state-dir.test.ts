import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SID_ADMINISTRATORS, SID_SYSTEM } from '../../src/ipc/pipe-auth-windows';
import { lockWindowsStateDir } from '../../src/platform/state-dir-windows';
import { FakeWindows } from './fake-windows';
import { expectGolden } from './golden';
import { capturingLogger, removeStateDirs, stateDir } from './scenario';

afterAll(removeStateDirs);

const USER = 'S-1-5-21-1004336348-1177238915-682003330-1002';
const EVERYONE = 'S-1-1-0';
const LOCKED = [
  { sid: SID_SYSTEM, rights: '(OI)(CI)F', inherited: false },
  { sid: SID_ADMINISTRATORS, rights: '(OI)(CI)F', inherited: false },
];

/** The transcript with the temporary directory named as on Windows, so the golden file is fixed. */
const transcript = (w: FakeWindows, dir: string) =>
  w.transcript().split(dir).join('C:\\ProgramData\\Trellis');

describe('the Windows state directory lock (mode 0700 does nothing there)', () => {
  it('made by trellisd: owner Administrators, nothing inherited, SYSTEM and Administrators only', async () => {
    const w = new FakeWindows();
    const dir = join(stateDir(), 'Trellis');
    w.acls.add(dir, SID_SYSTEM);
    await lockWindowsStateDir(dir, w, capturingLogger([]));
    expect(existsSync(dir)).toBe(true);
    expectGolden('state-dir-lock.txt', transcript(w, dir));
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });

    // Every start locks it again; nothing is left to remove then.
    const calls = w.calls.length;
    await lockWindowsStateDir(dir, w, capturingLogger([]));
    expect(w.calls.length - calls).toBe(3);
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });
  });

  it('made first by a user who granted themselves and Everyone: taken over, their entries removed', async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, USER, [
      { sid: USER, rights: '(OI)(CI)F' },
      { sid: EVERYONE, rights: '(OI)(CI)R' },
    ]);
    const logs: string[] = [];
    await lockWindowsStateDir(dir, w, capturingLogger(logs));
    expectGolden('state-dir-foreign.txt', transcript(w, dir));
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });
    expect(logs.join('')).toMatch(/granted others access: removed/);
  });

  it('a failing icacls stops the start (no key is written into an open directory)', async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, SID_SYSTEM);
    const run = w.run.bind(w);
    w.run = async (command, args) =>
      command === 'icacls' && args.includes('/inheritance:r')
        ? { stdout: '', stderr: `${args[0]}: Access is denied.`, code: 5 }
        : run(command, args);
    await expect(lockWindowsStateDir(dir, w, capturingLogger([]))).rejects.toThrow(/Access is denied/);
  });
});
