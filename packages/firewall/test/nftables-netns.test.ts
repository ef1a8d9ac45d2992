import { performance } from 'node:perf_hooks';
import { type CommandRunner, type InboundPolicy, NftablesBackend } from '../src';
import { AFTER, BEFORE, manyPeers } from './support/fixtures';
import { Netns, realTestBlocker } from './support/netns';

// The nftables backend against the real kernel, inside a private network namespace: the ruleset it
// loads, its no-op and incremental paths, and that tables it does not own stay byte for byte the same.

const blocker = realTestBlocker();
const IFACE = 'wg-a1';

/** Table definitions other software would have loaded: Docker-like and ufw-like (default deny). */
const FOREIGN = `table ip filter {
	chain DOCKER-USER {
		return
	}
	chain FORWARD {
		type filter hook forward priority filter; policy drop;
		counter jump DOCKER-USER
	}
}
table inet ufw {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lo" accept
		tcp dport 22 accept
	}
}
`;

/** `nft list ruleset` without table inet trellis. */
function foreignPart(ruleset: string): string {
  return ruleset.replace(/^table inet trellis \{\n[\s\S]*?^\}\n/m, '');
}

function counting(run: CommandRunner): { run: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    run: (cmd, args, stdin) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      return run(cmd, args, stdin);
    },
  };
}

const withIface = (p: InboundPolicy): InboundPolicy => ({ ...p, interfaceName: IFACE });

if (blocker) {
  describe('NftablesBackend in a network namespace', () => {
    it.skip(`skipped: ${blocker} (needs root, ip and nft)`, () => undefined);
  });
} else {
  describe('NftablesBackend in a network namespace', () => {
    let ns: Netns | undefined;
    const list = async () => await ns!.exec('nft', ['list', 'ruleset']);

    beforeAll(async () => {
      ns = await Netns.create(`trl-fw-${process.pid}`);
      await ns.exec('ip', ['link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`]);
      await ns.exec('nft', ['-f', '-'], FOREIGN);
    }, 30_000);

    afterAll(async () => {
      await ns?.destroy();
    });

    it('applies, re-applies as a no-op, changes incrementally, survives a restart, removes; foreign tables untouched', async () => {
      const foreign = foreignPart(await list());
      expect(foreign).toContain('table inet ufw');
      const k = counting(ns!.run);
      const backend = new NftablesBackend({ run: k.run });

      expect(await backend.apply(withIface(BEFORE))).toMatchObject({ changed: true, mode: 'full', cut: 0 });
      expect(foreignPart(await list())).toBe(foreign);

      k.calls.length = 0;
      expect(await backend.apply(withIface(BEFORE))).toEqual({ changed: false, mode: 'none', cut: 0 });
      expect(k.calls).toEqual([]);

      expect(await backend.apply(withIface(AFTER))).toMatchObject({ changed: true, mode: 'incremental' });
      expect(k.calls.filter((c) => c.startsWith('nft'))).toEqual(['nft -f -']);
      expect(foreignPart(await list())).toBe(foreign);
      const doc = JSON.parse(await ns!.exec('nft', ['-j', 'list', 'table', 'inet', 'trellis'])) as {
        nftables: Array<{ set?: { name: string; elem?: unknown[] } }>;
      };
      const elems = (name: string) =>
        JSON.stringify(doc.nftables.find((x) => x.set?.name === name)?.set?.elem ?? []);
      expect(elems('allow_all')).toBe('[]');
      expect(elems('allow_icmp')).toBe('["100.64.0.2","100.64.0.3"]');
      expect(JSON.parse(elems('allow_ports'))).toEqual(
        expect.arrayContaining([
          { concat: ['100.64.0.3', 'tcp', 22] },
          { concat: ['100.64.0.11', 'udp', { range: [5000, 5010] }] },
        ]),
      );
      expect(JSON.parse(elems('allow_ports'))).toHaveLength(6);

      // A restarted agent asking for what the kernel holds changes nothing.
      const k2 = counting(ns!.run);
      expect(await new NftablesBackend({ run: k2.run }).apply(withIface(AFTER))).toEqual({
        changed: false,
        mode: 'none',
        cut: 0,
      });
      expect(k2.calls).toEqual(['nft -j list table inet trellis']);
      // One asking for something else replaces the table.
      expect((await new NftablesBackend({ run: ns!.run }).apply(withIface(BEFORE))).mode).toBe('full');

      const before = await list();
      expect(await backend.counters()).toEqual({
        accepted: { packets: 0, bytes: 0 },
        dropped: { packets: 0, bytes: 0 },
        rejected: { packets: 0, bytes: 0 },
      });
      await backend.remove();
      await backend.remove();
      const after = await list();
      expect(after).not.toContain('table inet trellis');
      expect(after).toBe(foreignPart(before));
      expect(after).toBe(foreign);
    }, 30_000);

    it('1,000 peers: an incremental change against a full reload (figures printed, not asserted)', async () => {
      let nftMs = 0;
      const run: CommandRunner = async (cmd, args, stdin) => {
        const t = performance.now();
        const r = await ns!.run(cmd, args, stdin);
        if (cmd === 'nft') nftMs += performance.now() - t;
        return r;
      };
      const backend = new NftablesBackend({ run });
      await backend.apply(manyPeers(1000, 0, IFACE));
      const figures: Record<string, { total: number[]; nft: number[] }> = {};
      const time = async (what: string, policy: InboundPolicy, mode: string) => {
        figures[what] ??= { total: [], nft: [] };
        nftMs = 0;
        const t = performance.now();
        expect((await backend.apply(policy)).mode).toBe(mode);
        figures[what].total.push(performance.now() - t);
        figures[what].nft.push(nftMs);
      };
      for (let i = 0; i < 5; i++) {
        // Same peers on a renamed interface: a new rule skeleton, so the whole table is replaced.
        const iface = i % 2 === 0 ? 'wg-b2' : IFACE;
        await time('full reload', manyPeers(1000, 0, iface), 'full');
        // A peer added: two set elements, nothing to cut.
        await time('incremental, a peer added', manyPeers(1001, 0, iface), 'incremental');
        // One peer's port span moves: two set elements, and that peer's tcp flows are audited.
        await time('incremental, a span moved', manyPeers(1001, 10 + i, iface), 'incremental');
      }
      const ms = (x: number) => x.toFixed(1);
      const median = (xs: number[]) => ms([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
      console.log(
        [
          'nftables with 1,000 peers, ms over 5 runs: apply total min/median [runs]; the nft -f - part min/median',
          ...Object.entries(figures).map(
            ([what, f]) =>
              `  ${what.padEnd(26)} ${ms(Math.min(...f.total))}/${median(f.total)} [${f.total.map(ms).join(', ')}]; ` +
              `nft ${ms(Math.min(...f.nft))}/${median(f.nft)}`,
          ),
        ].join('\n'),
      );
      await backend.remove();
    }, 60_000);
  });
}
