import {
  checkAddress,
  checkAlias,
  checkPrefix,
  POWERSHELL,
  psArgs,
  psString,
  runPowerShellLines,
  scriptOf,
} from '../../src/platform/powershell';
import { RecordingRunner } from '../helpers/recording-runner';

describe('PowerShell scripts as argv', () => {
  it('passes the script base64-encoded (UTF-16LE) after fixed flags, with the stop-on-error prelude', () => {
    const args = psArgs("Get-NetRoute -DestinationPrefix '0.0.0.0/0'\n");
    expect(args.slice(0, 6)).toEqual([
      '-NoLogo',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
    ]);
    expect(args).toHaveLength(7);
    expect(args[6]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(args[6]!, 'base64').toString('utf16le')).toBe(
      "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\nGet-NetRoute -DestinationPrefix '0.0.0.0/0'\n",
    );
    expect(scriptOf(args)).toBe("Get-NetRoute -DestinationPrefix '0.0.0.0/0'\n");
    // Non-ASCII survives the round trip (UTF-16, not the console code page).
    expect(scriptOf(psArgs("'Ethernet – café'"))).toBe("'Ethernet – café'");
  });

  it('splits long change lists so every command line stays far below 32,767 characters', async () => {
    const runner = new RecordingRunner();
    const lines = Array.from(
      { length: 95 },
      (_, i) =>
        `New-NetRoute -InterfaceIndex 17 -DestinationPrefix '10.${i}.0.0/16' -NextHop '0.0.0.0' -RouteMetric 116 -PolicyStore ActiveStore | Out-Null`,
    );
    await runPowerShellLines(runner, lines);
    expect(runner.calls).toHaveLength(3);
    for (const call of runner.calls) {
      expect(call.startsWith(`${POWERSHELL} -NoLogo`)).toBe(true);
      expect(call.length).toBeLessThan(32_767);
    }
    await runPowerShellLines(runner, []);
    expect(runner.calls).toHaveLength(3);
  });

  it('fails with the script error PowerShell printed', async () => {
    const runner = {
      run: async () => ({ stdout: '', stderr: 'New-NetRoute : Element not found.', code: 1 }),
      spawn: () => {
        throw new Error('not used');
      },
    };
    await expect(runPowerShellLines(runner, ['New-NetRoute'])).rejects.toThrow(/Element not found/);
  });
});

describe('psString: values quoted so nothing in them runs', () => {
  it.each([
    ['trellis0', "'trellis0'"],
    ["it's", "'it''s'"],
    ['$(Remove-Item C:\\ -Recurse)', "'$(Remove-Item C:\\ -Recurse)'"],
    ['`whoami`; calc', "'`whoami`; calc'"],
    ['a\u2019; calc; \u2018', "'a\u2019\u2019; calc; \u2018\u2018'"],
    ['\u201a\u201b', "'\u201a\u201a\u201b\u201b'"],
    ['"double"', `'"double"'`],
  ])('%j → %s', (value, quoted) => {
    expect(psString(value)).toBe(quoted);
  });

  it('refuses control characters (a newline would end the command)', () => {
    expect(() => psString("a'\nRemove-Item C:\\")).toThrow(/control character/);
    expect(() => psString('a\u0000b')).toThrow(/control character/);
    expect(() => psString('a\rb')).toThrow(/control character/);
  });

  it('validates what scripts interpolate', () => {
    expect(checkAlias('trellis0')).toBe('trellis0');
    expect(checkAlias('Trellis Mesh 2')).toBe('Trellis Mesh 2');
    for (const bad of ["x'; Remove-Item C:\\ -Recurse; '", '', ' lead', 'a'.repeat(65), 'x$y', 'x\ny']) {
      expect(() => checkAlias(bad)).toThrow(/refusing interface name/);
    }
    expect(checkAddress('100.64.0.7')).toBe('100.64.0.7');
    expect(checkAddress('2001:db8::1')).toBe('2001:db8::1');
    for (const bad of ['100.64.0.256', 'fe80::1%3', "1.2.3.4'", 'example.com']) {
      expect(() => checkAddress(bad)).toThrow(/not an IP address/);
    }
    expect(checkPrefix('10.0.0.0/8')).toBe('10.0.0.0/8');
    expect(checkPrefix('::/1')).toBe('::/1');
    for (const bad of ['10.0.0.0/33', '10.0.0.0', '10.0.0.0/8/9', '::/129', "10.0.0.0/8'", 'fe80::%1/64']) {
      expect(() => checkPrefix(bad)).toThrow(/not an IP prefix/);
    }
  });
});
