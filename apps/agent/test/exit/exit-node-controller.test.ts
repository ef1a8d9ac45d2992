import pino from 'pino';
import {
  type ExitDnsHook,
  ExitNodeController,
  type ExitNodeInput,
} from '../../src/exit/exit-node-controller';
import { EXIT_FWMARK, type ExitRouting, type ExitRoutingPlan } from '../../src/exit/exit-routing';
import type { WgConfigUpdate, WgDeviceState } from '../../src/wireguard/types';

const logger = pino({ level: 'silent' });
const GW = { id: '00000000-0000-4000-8000-00000000000b', name: 'gw-b', address: '100.64.0.11' };
const HOW_TO_STOP = "`trellis set --exit-node ''`";

/** One log of what each part was told, in order. */
class World implements ExitRouting, ExitDnsHook {
  readonly log: string[] = [];
  fwmark = 0;
  failRouting: string | null = null;
  private recreated: Array<() => void> = [];
  readonly wireguard = {
    getState: async (): Promise<WgDeviceState> => ({
      privateKey: null,
      listenPort: 1,
      fwmark: this.fwmark,
      peers: [],
    }),
    apply: async (u: WgConfigUpdate) => {
      this.log.push(`wg fwmark=${u.fwmark}`);
      if (u.fwmark !== undefined) this.fwmark = u.fwmark;
    },
    onRecreated: (l: () => void) => {
      this.recreated.push(l);
    },
  };
  async apply(plan: ExitRoutingPlan): Promise<void> {
    if (this.failRouting) throw new Error(this.failRouting);
    this.log.push(`route ${plan.interfaceName} lan=${plan.allowLan} bypass=${plan.bypass.join(',')}`);
  }
  async remove(): Promise<void> {
    this.log.push('unroute');
  }
  async followExitNode(exit: { address: string | null } | null): Promise<void> {
    this.log.push(`dns ${exit === null ? 'own' : (exit.address ?? 'nowhere')}`);
  }
  recreate(): void {
    this.fwmark = 0;
    for (const l of this.recreated) l();
  }
  controller(): ExitNodeController {
    return new ExitNodeController({ routing: this, wireguard: this.wireguard, dns: this, logger });
  }
}

const input = (over: Partial<ExitNodeInput> = {}): ExitNodeInput => ({
  interfaceName: 'trellis0',
  wanted: 'gw-b',
  chosen: GW,
  active: true,
  allowLan: true,
  bypass: ['198.51.100.7', '198.51.100.1', '198.51.100.7'],
  ...over,
});

describe('ExitNodeController', () => {
  it('sends names to the exit node, marks WireGuard before routing, and shows it active', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input());
    expect(w.log).toEqual([
      'dns 100.64.0.11',
      `wg fwmark=${EXIT_FWMARK}`,
      'route trellis0 lan=true bypass=198.51.100.1,198.51.100.7',
    ]);
    expect(c.status()).toEqual({ name: 'gw-b', state: 'active', allowLan: true });
    await c.apply(input());
    expect(w.log.filter((l) => l.startsWith('wg'))).toHaveLength(1); // the mark is already there
  });

  it('an offline exit node keeps every rule in place and says how to get out', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input({ active: false, allowLan: false }));
    expect(w.log).toContain('route trellis0 lan=false bypass=198.51.100.1,198.51.100.7');
    expect(w.log).toContain('dns 100.64.0.11');
    expect(c.status()).toEqual({
      name: 'gw-b',
      state: 'blocked',
      allowLan: false,
      reason: `exit node gw-b is offline: internet traffic is blocked until it returns or you run ${HOW_TO_STOP}`,
    });
  });

  it('with no usable node, routes stay and other names fail instead of leaking; each reason says why', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input({ wanted: 'nas', chosen: null, active: false }));
    expect(w.log).toEqual([
      'dns nowhere',
      `wg fwmark=${EXIT_FWMARK}`,
      'route trellis0 lan=true bypass=198.51.100.1,198.51.100.7',
    ]);
    expect(c.status()).toMatchObject({ name: 'nas', state: 'blocked' });
    expect(c.status()?.reason).toMatch(/^no device named nas is an exit node: internet traffic is blocked/);
    expect(c.status()?.reason).toContain(HOW_TO_STOP);
    await c.apply(input({ wanted: 'gw-b', chosen: null, active: false, unavailable: 'not-allowed' }));
    expect(c.status()?.reason).toMatch(/^the policy does not let this device use gw-b:/);
    await c.apply(input({ wanted: 'nope', chosen: null, active: false, unavailable: 'not-found' }));
    expect(c.status()?.reason).toMatch(/^no device named nope is in this mesh:/);
    await c.apply(input({ wanted: 'laptop', chosen: null, active: false, unavailable: 'replaced' }));
    expect(c.status()).toMatchObject({ name: 'laptop', state: 'blocked' });
    expect(c.status()?.reason).toBe(
      'exit node laptop is not the device you chose (it left the mesh and another device is now laptop): ' +
        'internet traffic is blocked until you choose it again with `trellis set --exit-node laptop` or ' +
        `you run ${HOW_TO_STOP}`,
    );
    await c.apply(input({ wanted: 'laptop', chosen: null, active: false, unavailable: 'key-changed' }));
    expect(c.status()?.reason).toMatch(/^exit node laptop is not the device you chose \(its key changed/);
    expect(c.status()?.reason).toContain('`trellis set --exit-node laptop`');
  });

  it('turning the exit node off restores DNS, routing and the mark, and status is null', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input());
    w.log.length = 0;
    await c.apply(input({ wanted: null, chosen: null, active: false }));
    expect(w.log).toEqual(['dns own', 'unroute', 'wg fwmark=0']);
    expect(c.status()).toBeNull();
    await c.remove();
    expect(w.log).toHaveLength(3); // nothing left to undo
  });

  it('clears what a crashed run left on the first apply without an exit node, once', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input({ wanted: null, chosen: null, active: false }));
    await c.apply(input({ wanted: null, chosen: null, active: false }));
    expect(w.log).toEqual(['dns own', 'unroute']);
  });

  it('a routing failure shows as blocked with the error, and the next apply tries again', async () => {
    const w = new World();
    const c = w.controller();
    w.failRouting = 'ip rule add failed (exit 2): Operation not permitted';
    await expect(c.apply(input())).resolves.toBeUndefined();
    expect(c.status()).toMatchObject({ state: 'blocked', name: 'gw-b' });
    expect(c.status()?.reason).toContain('Operation not permitted');
    expect(w.log[0]).toBe('dns 100.64.0.11'); // names stopped going to the LAN all the same
    w.failRouting = null;
    await c.apply(input());
    expect(c.status()).toEqual({ name: 'gw-b', state: 'active', allowLan: true });
  });

  it('marks a re-created WireGuard again', async () => {
    const w = new World();
    const c = w.controller();
    await c.apply(input());
    w.recreate();
    await c.apply(input()); // queued behind the re-apply the listener started
    expect(w.fwmark).toBe(EXIT_FWMARK);
    expect(w.log.filter((l) => l === `wg fwmark=${EXIT_FWMARK}`)).toHaveLength(2);
  });
});
