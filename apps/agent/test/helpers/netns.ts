import { execFileSync } from 'node:child_process';

/** A network namespace created (and deleted) by a test; names carry the test's pid. */
export class TestNetns {
  constructor(readonly name: string) {}

  static create(name: string): TestNetns {
    execFileSync('ip', ['netns', 'add', name]);
    const ns = new TestNetns(name);
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  exec(cmd: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Deletes the namespace; everything inside it (veth ends, TUN devices) goes with it. */
  delete(): void {
    try {
      execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .forEach((pid) => {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        });
    } catch {
      // namespace already gone
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

/** Joins two namespaces with a veth pair and addresses each end in one /24. */
export function linkNamespaces(a: TestNetns, b: TestNetns, tag: string, subnet: string): void {
  const ea = `va${tag}`;
  const eb = `vb${tag}`;
  execFileSync('ip', [
    'link',
    'add',
    ea,
    'netns',
    a.name,
    'type',
    'veth',
    'peer',
    'name',
    eb,
    'netns',
    b.name,
  ]);
  a.exec('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', ea]);
  b.exec('ip', ['addr', 'add', `${subnet}.2/24`, 'dev', eb]);
  a.exec('ip', ['link', 'set', ea, 'up']);
  b.exec('ip', ['link', 'set', eb, 'up']);
}
