import type { ChildProcess } from 'node:child_process';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';

type Json = Record<string, unknown>;

/**
 * `ip rule` and `ip route` of one table as iproute2 does them, enough for the exit routing: keeps
 * the rules and routes it is told, answers `-j ... show` in iproute2's JSON, refuses a duplicate
 * add and a delete of something absent, and records every command line.
 */
export class FakeIp implements CommandRunner {
  readonly calls: string[] = [];
  readonly rules: Record<4 | 6, Json[]> = {
    4: [
      { priority: 0, src: 'all', table: 'local' },
      { priority: 32766, src: 'all', table: 'main' },
    ],
    6: [
      { priority: 0, src: 'all', table: 'local' },
      { priority: 32766, src: 'all', table: 'main' },
    ],
  };
  readonly routes: Record<4 | 6, Json[]> = { 4: [], 6: [] };
  /** Fails the command lines it is given, once each. */
  readonly failOnce = new Set<string>();
  /** A host booted with ipv6.disable=1: every `ip -6` is refused. */
  noIpv6 = false;

  /** Only the changes (adds and deletes), not the reads. */
  get changes(): string[] {
    return this.calls.filter((c) => c.startsWith('ip ') && !c.includes(' -j '));
  }

  async run(command: string, args: string[]): Promise<CommandResult> {
    const line = [command, ...args].join(' ');
    this.calls.push(line);
    if (this.failOnce.delete(line))
      return { stdout: '', stderr: 'RTNETLINK answers: Operation not permitted', code: 2 };
    if (command === 'sysctl') return ok('2\n');
    if (this.noIpv6 && args[0] === '-6') {
      return { stdout: '', stderr: 'RTNETLINK answers: Address family not supported by protocol', code: 2 };
    }
    if (command !== 'ip') return { stdout: '', stderr: `unknown command ${command}`, code: 127 };
    const a = [...args];
    const family = a[0] === '-6' ? 6 : 4;
    if (a[0] === '-6') a.shift();
    const json = a[0] === '-j';
    if (json) a.shift();
    const [object, verb, ...rest] = a;
    if (object === 'rule' && verb === 'show' && json) return ok(JSON.stringify(this.rules[family]));
    if (object === 'route' && verb === 'show' && json) {
      if (this.routes[family].length === 0) {
        return { stdout: '', stderr: `Error: ipv${family}: FIB table does not exist.`, code: 2 };
      }
      return ok(JSON.stringify(this.routes[family]));
    }
    if (object === 'rule' && (verb === 'add' || verb === 'del')) return this.rule(family, verb, rest);
    if (object === 'route' && (verb === 'add' || verb === 'del')) return this.route(family, verb, rest);
    return { stdout: '', stderr: `fake ip does not do: ${line}`, code: 1 };
  }

  spawn(): ChildProcess {
    throw new Error('not used');
  }

  private rule(family: 4 | 6, verb: string, args: string[]): CommandResult {
    const r: Json = { priority: 0, src: 'all' };
    for (let i = 0; i < args.length; i++) {
      const w = args[i]!;
      const v = args[i + 1]!;
      if (w === 'priority') r.priority = Number(args[++i]);
      else if (w === 'to') {
        const [dst, len] = v.split('/');
        r.dst = dst;
        if (Number(len) !== (family === 4 ? 32 : 128)) r.dstlen = Number(len);
        i++;
      } else if (w === 'not') r.not = null;
      else if (w === 'fwmark') r.fwmark = args[++i];
      else if (w === 'table') r.table = args[++i];
      else if (w === 'suppress_prefixlength') r.suppress_prefixlen = Number(args[++i]);
      else return { stdout: '', stderr: `fake ip: unknown rule word ${w}`, code: 1 };
    }
    const list = this.rules[family];
    const at = list.findIndex((x) => sameJson(x, r));
    if (verb === 'add') {
      if (at >= 0) return { stdout: '', stderr: 'RTNETLINK answers: File exists', code: 2 };
      list.push(r);
      list.sort((x, y) => (x.priority as number) - (y.priority as number));
    } else {
      if (at < 0) return { stdout: '', stderr: 'RTNETLINK answers: No such file or directory', code: 2 };
      list.splice(at, 1);
    }
    return ok('');
  }

  private route(family: 4 | 6, verb: string, args: string[]): CommandResult {
    const r: Json = {};
    let i = 0;
    if (args[0] === 'unreachable') {
      r.type = 'unreachable';
      i = 1;
    }
    r.dst = args[i++];
    for (; i < args.length; i++) {
      const w = args[i]!;
      if (w === 'dev') r.dev = args[++i];
      else if (w === 'metric') r.metric = Number(args[++i]);
      else if (w === 'table') i++;
      else return { stdout: '', stderr: `fake ip: unknown route word ${w}`, code: 1 };
    }
    if (r.metric === 0) delete r.metric; // iproute2 omits a zero metric
    const list = this.routes[family];
    const at = list.findIndex((x) => sameJson(x, r));
    if (verb === 'add') {
      if (at >= 0) return { stdout: '', stderr: 'RTNETLINK answers: File exists', code: 2 };
      list.push(r);
    } else {
      if (at < 0) return { stdout: '', stderr: 'RTNETLINK answers: No such process', code: 2 };
      list.splice(at, 1);
    }
    return ok('');
  }
}

const ok = (stdout: string): CommandResult => ({ stdout, stderr: '', code: 0 });

function sameJson(a: Json, b: Json): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
}
