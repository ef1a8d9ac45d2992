import { parseDaemonOptions } from '../src/daemon-options';

describe('trellisd options for the local UI', () => {
  it('is off unless asked for; the token file defaults to /run/trellis/ui-token; root only without --operator', () => {
    const o = parseDaemonOptions([], {});
    expect(o.uiListen).toBeNull();
    expect(o.operator).toBeNull();
    expect(o.uiTokenFile).toBe('/run/trellis/ui-token');
  });

  it('takes a loopback address and an operator, from flags or the environment', () => {
    const o = parseDaemonOptions(['--ui-listen', '127.0.0.1:41820', '--operator', 'alice'], {});
    expect(o.uiListen).toEqual({ host: '127.0.0.1', port: 41820 });
    expect(o.operator).toBe('alice');
    const e = parseDaemonOptions([], {
      TRELLIS_UI_LISTEN: '[::1]:41821',
      TRELLIS_OPERATOR: 'bob',
      TRELLIS_UI_TOKEN_FILE: '/run/x/token',
    });
    expect(e).toMatchObject({
      uiListen: { host: '::1', port: 41821 },
      operator: 'bob',
      uiTokenFile: '/run/x/token',
    });
  });

  it('refuses any address but loopback: the UI is for the local user only', () => {
    for (const bad of ['0.0.0.0:41820', '192.168.1.2:41820', '[::]:41820', 'localhost:41820', '41820']) {
      expect(() => parseDaemonOptions(['--ui-listen', bad], {})).toThrow(/--ui-listen/);
    }
  });
});
