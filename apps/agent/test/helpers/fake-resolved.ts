import type { ChildProcess } from 'node:child_process';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';

interface LinkSettings {
  dns: string[];
  domains: string[];
  defaultRoute: boolean;
}

const EMPTY: LinkSettings = { dns: [], domains: [], defaultRoute: false };

/**
 * `resolvectl` against an in-memory systemd-resolved: the set verbs change a link, the read verbs
 * print it as resolvectl does (`Link 5 (trellis0): …`). Records every command line; `failing`
 * answers a given line with an error instead.
 */
export class FakeResolved implements CommandRunner {
  readonly calls: string[] = [];
  readonly links = new Map<string, LinkSettings>();
  /** Called after each command, with the link's settings then (to catch a window mid-apply). */
  onCommand: ((line: string, link: LinkSettings | undefined) => void) | null = null;

  constructor(
    links: string[] = ['trellis0'],
    readonly failing: Record<string, Partial<CommandResult>> = {},
  ) {
    for (const l of links) this.links.set(l, { ...EMPTY });
  }

  /** What resolved does on `resolvectl revert`, or when the link is re-created. */
  drop(link: string): void {
    this.links.set(link, { ...EMPTY });
  }

  /** The commands that change something (no read-backs). */
  sets(): string[] {
    return this.calls.filter((c) => c.split(' ').length > 3 || c.startsWith('resolvectl revert'));
  }

  async run(command: string, args: string[]): Promise<CommandResult> {
    const line = [command, ...args].join(' ');
    this.calls.push(line);
    const r = this.answer(args);
    this.onCommand?.(line, this.links.get(args[1] ?? ''));
    return this.failing[line] ? { stdout: '', stderr: '', code: 1, ...this.failing[line] } : r;
  }

  spawn(): ChildProcess {
    throw new Error('not used');
  }

  private answer([verb, name, ...values]: string[]): CommandResult {
    const link = this.links.get(name ?? '');
    if (!link || !name) {
      return { stdout: '', stderr: `Failed to resolve interface "${name}": No such device`, code: 1 };
    }
    const index = [...this.links.keys()].indexOf(name) + 5;
    const print = (v: string) => ({
      stdout: v ? `Link ${index} (${name}): ${v}\n` : `Link ${index} (${name}):\n`,
      stderr: '',
      code: 0,
    });
    const set = (change: Partial<LinkSettings>) => {
      this.links.set(name, { ...link, ...change });
      return { stdout: '', stderr: '', code: 0 };
    };
    switch (verb) {
      case 'dns':
        return values.length ? set({ dns: values }) : print(link.dns.join(' '));
      case 'domain':
        return values.length ? set({ domains: values }) : print(link.domains.join(' '));
      case 'default-route':
        return values.length
          ? set({ defaultRoute: values[0] === 'true' })
          : print(link.defaultRoute ? 'yes' : 'no');
      case 'revert':
        return set({ ...EMPTY });
      default:
        return { stdout: '', stderr: '', code: 0 };
    }
  }
}
