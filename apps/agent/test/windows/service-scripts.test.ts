import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NRPT_COMMENT } from '../../src/platform/resolver-windows';
import { FakeAcls } from './fake-acl';
import { expectGolden } from './golden';
import {
  cmdletParams,
  commandLineToArgv,
  evalAssignment,
  nativeArgv,
  nativeCommandLine,
  type Vars,
} from './ps-model';

const infra = join(__dirname, '..', '..', '..', '..', 'infra', 'windows');
const install = readFileSync(join(infra, 'install-service.ps1'), 'utf8');
const uninstall = readFileSync(join(infra, 'uninstall-service.ps1'), 'utf8');

/** The native commands a script runs (`& sc.exe …`, `& icacls.exe …`), in order. */
function nativeCommands(script: string): string[] {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('& '))
    .map((l) => l.replace(/\s*\|\s*Out-Null$/, ''));
}

/** PowerShell takes `"$name:…"` for a drive-qualified variable: a colon after one must be `${name}:`. */
function driveQualifiedVariables(script: string): string[] {
  const strings = script.match(/"(?:[^"`]|`.)*"/g) ?? [];
  return strings.filter((s) => /\$(?!env:)[A-Za-z_][A-Za-z0-9_]*:(?!:)/.test(s));
}

describe('infra/windows service scripts', () => {
  it('install: a locked state directory, the service with restart-on-failure, then started', () => {
    expectGolden('service-install-commands.txt', `${nativeCommands(install).join('\n')}\n`);
    const cmds = nativeCommands(install);
    expect(cmds).toContain(
      '& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/30000',
    );
    expect(cmds).toContain('& sc.exe failureflag $ServiceName 1');
    expect(cmds.at(-1)).toBe('& sc.exe start $ServiceName');
    // The state directory: Administrators' first, then nothing inherited, before the service exists.
    const lines = install.split('\n').map((l) => l.trim());
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    expect(at('& icacls.exe $StateDir /setowner')).toBeLessThan(at('& icacls.exe $StateDir /inheritance:r'));
    expect(at('& icacls.exe $StateDir /inheritance:r')).toBeLessThan(at('New-Service '));
    expect(at('New-Service ')).toBeLessThan(at('& sc.exe failure '));
    expect(install).toMatch(/\$ServiceName = 'trellisd'/);
    expect(install).toMatch(/\$ErrorActionPreference = 'Stop'/);
  });

  it("install: the service's path reaches CreateService in quotes, with spaces in it (CWE-428)", () => {
    const vars: Vars = new Map([
      ['InstallDir', 'C:\\Program Files\\Trellis'],
      ['ServiceName', 'trellisd'],
    ]);
    const lines = install.split('\n');
    for (const l of lines.filter((l) => /^\$(Wrapper|BinaryPath) = /.test(l))) evalAssignment(l, vars);
    const newService = lines.find((l) => l.startsWith('New-Service '))!;
    const params = cmdletParams(newService, vars);
    expect(params.get('BinaryPathName')).toBe('"C:\\Program Files\\Trellis\\trellisd-service.exe"');
    expect(params.get('Name')).toBe('trellisd');
    expect(params.get('StartupType')).toBe('Automatic');
    // No -Credential: LocalSystem.
    expect([...params.keys()].sort()).toEqual([
      'BinaryPathName',
      'Description',
      'DisplayName',
      'Name',
      'StartupType',
    ]);
    expect(params.get('Description')).toMatch(/the control pipe \\\\\.\\pipe\\trellisd$/);

    // What it replaced: Windows PowerShell hands the embedded quotes to sc.exe unescaped, and its
    // C runtime strips them, so the service's path was stored unquoted.
    const old = '& sc.exe create $ServiceName binPath= "`"$Wrapper`"" start= auto obj= LocalSystem';
    const argv = nativeArgv(old, vars);
    expect(argv[argv.indexOf('binPath=') + 1]).toBe('C:\\Program Files\\Trellis\\trellisd-service.exe');
  });

  it('install: the icacls lines, as icacls gets them, leave the directory to SYSTEM and Administrators', () => {
    const lines = nativeCommands(install).filter((c) => c.startsWith('& icacls.exe'));
    expect(lines).toHaveLength(2);
    for (const dir of ['C:\\ProgramData\\Trellis', 'D:\\Trellis state']) {
      const acls = new FakeAcls();
      // Made by the installing Administrator (the owner policy "object creator"), before this run.
      acls.add(dir, 'S-1-5-21-1004336348-1177238915-682003330-500');
      for (const l of lines) {
        const [program, ...args] = nativeArgv(l, new Map([['StateDir', dir]]));
        expect(program).toBe('icacls.exe');
        expect(acls.icacls(args).code).toBe(0);
      }
      expect(acls.dirs.get(dir)).toEqual({
        owner: 'S-1-5-32-544',
        aces: [
          { sid: 'S-1-5-18', rights: '(OI)(CI)F', inherited: false },
          { sid: 'S-1-5-32-544', rights: '(OI)(CI)F', inherited: false },
        ],
      });
    }
  });

  it('install: refuses a state directory someone else made first, before changing anything', () => {
    const lines = install.split('\n').map((l) => l.trim());
    const check = lines.findIndex((l) => l.startsWith('if ($trusted -notcontains $owner) { throw '));
    expect(lines[check - 1]).toBe(
      '$owner = (Get-Acl -LiteralPath $StateDir).GetOwner([System.Security.Principal.SecurityIdentifier]).Value',
    );
    expect(lines).toContain(
      "$trusted = @('S-1-5-18', 'S-1-5-32-544', [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value)",
    );
    expect(check).toBeGreaterThan(0);
    expect(check).toBeLessThan(lines.findIndex((l) => l.startsWith('New-Item -ItemType Directory')));
    expect(check).toBeLessThan(lines.findIndex((l) => l.startsWith('& icacls.exe')));
  });

  it('install: the WinSW wrapper runs node with the daemon and the state directory, stopping it gently', () => {
    const xml = /@"\n([\s\S]*?)\n"@/.exec(install)?.[1] ?? '';
    expect(xml).toMatch(/<id>\$ServiceName<\/id>/);
    expect(xml).toMatch(/<executable>\$\(\$esc::Escape\(\$Node\)\)<\/executable>/);
    expect(xml).toMatch(/<arguments>\$\(\$esc::Escape\(\$arguments -join ' '\)\)<\/arguments>/);
    expect(xml).toMatch(/<stoptimeout>30 sec<\/stoptimeout>/);
    expect(install).toMatch(
      /\$arguments = @\("`"\$Daemon`"", '--state-dir', "`"\$StateDir`""\) \+ \$DaemonArgs/,
    );
    expect(install).toMatch(/\$Daemon = Join-Path \$InstallDir 'apps\\agent\\dist\\daemon\.js'/);
  });

  it('uninstall: stops and deletes the service, and removes NRPT rules a crashed run left', () => {
    expectGolden('service-uninstall-commands.txt', `${nativeCommands(uninstall).join('\n')}\n`);
    const cmds = nativeCommands(uninstall);
    expect(cmds.indexOf('& sc.exe stop $ServiceName')).toBeLessThan(
      cmds.indexOf('& sc.exe delete $ServiceName'),
    );
    // The same marker the daemon puts on its rules, so only those go.
    expect(uninstall).toContain(`Where-Object { $_.Comment -eq '${NRPT_COMMENT}' }`);
  });

  it('the PowerShell model splits command lines as the C runtime documents it', () => {
    // learn.microsoft.com/cpp/c-language/parsing-c-command-line-arguments, the table of examples.
    const cases: Array<[string, string[]]> = [
      ['"abc" d e', ['abc', 'd', 'e']],
      ['a\\b d"e f"g h', ['a\\b', 'de fg', 'h']],
      ['a\\\\\\"b c d', ['a\\"b', 'c', 'd']],
      ['a\\\\\\\\"b c" d e', ['a\\\\b c', 'd', 'e']],
      ['a"b"" c d', ['ab" c d']],
    ];
    for (const [line, argv] of cases) expect(commandLineToArgv(line)).toEqual(argv);
    expect(nativeCommandLine('x.exe', ['a b', '"c d"', ''])).toBe('x.exe "a b" "c d" ""');
  });

  it('has no variable PowerShell would read as drive-qualified inside a string', () => {
    expect(driveQualifiedVariables(install)).toEqual([]);
    expect(driveQualifiedVariables(uninstall)).toEqual([]);
    expect(driveQualifiedVariables('"no $Daemon: here"')).toEqual(['"no $Daemon: here"']);
  });
});
