import { SID_ADMINISTRATORS } from '../../src/ipc/pipe-auth-windows';
import type { StateDirAcl } from '../../src/platform/state-dir-windows';
import type { CommandResult } from '../../src/util/command-runner';

export interface FakeAce {
  sid: string;
  rights: string;
  inherited: boolean;
  /** An access-denied entry (absent: access allowed). */
  deny?: true;
}
export interface FakeDirAcl {
  owner: string;
  aces: FakeAce[];
  /** A junction or symbolic link (absent: a directory of its own). */
  reparse?: true;
}

const ok = (stdout = 'Successfully processed 1 files; Failed processing 0 files\n'): CommandResult => ({
  stdout,
  stderr: '',
  code: 0,
});
const fail = (stderr: string): CommandResult => ({ stdout: '', stderr, code: 1 });
const SID_ARG = /^\*(S-1-[0-9-]+)$/;

/**
 * Directory ACLs as icacls changes them (the forms trellisd uses: /setowner, /inheritance:r,
 * /grant:r, /remove, /remove:d) and as Get-Acl reads them. A directory not modelled here is accepted as is,
 * so tests that do not look at ACLs need not model them.
 */
export class FakeAcls {
  readonly dirs = new Map<string, FakeDirAcl>();

  /** A directory as a user made it under ProgramData: inherited entries, and whatever they added. */
  add(
    dir: string,
    owner: string,
    explicit: Array<{ sid: string; rights: string; deny?: true }> = [],
  ): FakeDirAcl {
    const acl: FakeDirAcl = {
      owner,
      aces: [
        { sid: 'S-1-5-18', rights: '(OI)(CI)F', inherited: true },
        { sid: 'S-1-5-32-544', rights: '(OI)(CI)F', inherited: true },
        { sid: 'S-1-5-32-545', rights: '(OI)(CI)RX', inherited: true },
        { sid: owner, rights: '(OI)(CI)F', inherited: true }, // CREATOR OWNER, made concrete
        ...explicit.map((e) => ({ ...e, inherited: false })),
      ],
    };
    this.dirs.set(dir, acl);
    return acl;
  }

  icacls(args: readonly string[]): CommandResult {
    const [dir = '', ...rest] = args;
    const acl = this.dirs.get(dir);
    if (!acl) return ok();
    for (let i = 0; i < rest.length; i++) {
      const opt = rest[i]!;
      const operands: string[] = [];
      while (i + 1 < rest.length && !rest[i + 1]!.startsWith('/')) operands.push(rest[++i]!);
      switch (opt) {
        case '/setowner': {
          const sid = SID_ARG.exec(operands[0] ?? '')?.[1];
          if (!sid || operands.length !== 1) return fail(`Invalid parameter "${operands.join(' ')}"`);
          acl.owner = sid;
          break;
        }
        case '/inheritance:r':
          acl.aces = acl.aces.filter((a) => !a.inherited);
          break;
        case '/grant:r':
          for (const g of operands) {
            const m = /^\*(S-1-[0-9-]+):(.+)$/.exec(g);
            if (!m) return fail(`Invalid parameter "${g}"`);
            // Replaces the SID's explicit grants; its deny entries stay.
            acl.aces = acl.aces.filter((a) => a.inherited || a.deny || a.sid !== m[1]);
            acl.aces.push({ sid: m[1]!, rights: m[2]!, inherited: false });
          }
          break;
        case '/remove':
        case '/remove:d':
          for (const s of operands) {
            const sid = SID_ARG.exec(s)?.[1];
            if (!sid) return fail(`Invalid parameter "${s}"`);
            const denyOnly = opt === '/remove:d';
            acl.aces = acl.aces.filter((a) => a.sid !== sid || (denyOnly && !a.deny));
          }
          break;
        default:
          return fail(`fake icacls does not know ${opt}`);
      }
    }
    return ok();
  }

  /** The SIDs of the entries, allowing or denying, sorted, unique. */
  sids(dir: string): string[] {
    return [...new Set(this.dirs.get(dir)?.aces.map((a) => a.sid) ?? [])].sort();
  }

  /** What stateDirAclScript prints. A directory not modelled is Administrators' and has no entries. */
  read(dir: string): StateDirAcl {
    const acl = this.dirs.get(dir);
    const sids = (deny: boolean) =>
      [...new Set(acl?.aces.filter((a) => (a.deny ?? false) === deny).map((a) => a.sid))].sort();
    return {
      owner: acl?.owner ?? SID_ADMINISTRATORS,
      reparse: acl?.reparse ?? false,
      allow: sids(false),
      deny: sids(true),
    };
  }
}
