import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SID_ADMINISTRATORS, SID_SYSTEM } from '../../src/ipc/pipe-auth-windows';
import { lockWindowsStateDir } from '../../src/platform/state-dir-windows';
import { UserError } from '../../src/util/user-error';
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

    // Every start checks (it is there now) and locks it again; nothing is left to remove then.
    const calls = w.calls.length;
    await lockWindowsStateDir(dir, w, capturingLogger([]));
    expect(w.calls.slice(calls).map((c) => (c.command === 'icacls' ? c.args[1] : 'Get-Acl'))).toEqual([
      'Get-Acl',
      '/setowner',
      '/inheritance:r',
      'Get-Acl',
    ]);
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });
  });

  it("already there, Administrators', granting a user and Everyone and denying SYSTEM: those entries removed", async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, SID_ADMINISTRATORS, [
      { sid: USER, rights: '(OI)(CI)F' },
      { sid: EVERYONE, rights: '(OI)(CI)R' },
      { sid: SID_SYSTEM, rights: '(OI)(CI)W', deny: true },
    ]);
    const logs: string[] = [];
    await lockWindowsStateDir(dir, w, capturingLogger(logs));
    expectGolden('state-dir-foreign.txt', transcript(w, dir));
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });
    expect(logs.join('')).toMatch(/granted others access: removed/);
    expect(logs.join('')).toMatch(/denied SYSTEM or Administrators access: removed/);
  });

  it('made first by a user: refused before anything changes (files they put in it would stay theirs)', async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, USER, [{ sid: USER, rights: '(OI)(CI)F' }]);
    const before = structuredClone(w.acls.dirs.get(dir));
    const started = lockWindowsStateDir(dir, w, capturingLogger([]));
    await expect(started).rejects.toThrow(UserError);
    await expect(started).rejects.toThrow(`belongs to ${USER}, not to SYSTEM or Administrators`);
    expectGolden('state-dir-refused.txt', transcript(w, dir));
    expect(w.calls.map((c) => c.command)).toEqual(['powershell.exe']);
    expect(w.acls.dirs.get(dir)).toEqual(before);
  });

  it('a reparse point (junction or link), even one Administrators own: refused before anything changes', async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, SID_ADMINISTRATORS).reparse = true;
    await expect(lockWindowsStateDir(dir, w, capturingLogger([]))).rejects.toThrow(
      new UserError(`${dir} is a link (reparse point), not a directory: remove it and start trellisd again`),
    );
    expect(w.calls.map((c) => c.command)).toEqual(['powershell.exe']);
    expect(w.acls.dirs.get(dir)?.owner).toBe(SID_ADMINISTRATORS);
  });

  it("already there and SYSTEM's (a restart, or made by the installer): locked again", async () => {
    const w = new FakeWindows();
    const dir = stateDir();
    w.acls.add(dir, SID_SYSTEM);
    await lockWindowsStateDir(dir, w, capturingLogger([]));
    expect(w.acls.dirs.get(dir)).toEqual({ owner: SID_ADMINISTRATORS, aces: LOCKED });
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
