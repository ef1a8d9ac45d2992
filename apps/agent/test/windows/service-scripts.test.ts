import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NRPT_COMMENT } from '../../src/platform/resolver-windows';
import { expectGolden } from './golden';

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
    expect(cmds.find((c) => c.startsWith('& sc.exe create'))).toMatch(
      /^& sc\.exe create \$ServiceName binPath= .*\$Wrapper.* start= auto obj= LocalSystem/,
    );
    expect(cmds).toContain(
      '& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/30000',
    );
    expect(cmds).toContain('& sc.exe failureflag $ServiceName 1');
    expect(cmds.some((c) => c.startsWith('& sc.exe description $ServiceName '))).toBe(true);
    expect(cmds.at(-1)).toBe('& sc.exe start $ServiceName');
    // The state directory: nothing inherited, SYSTEM and Administrators only, before the service exists.
    const acl = cmds.findIndex((c) => c.startsWith('& icacls.exe $StateDir /inheritance:r'));
    expect(cmds[acl]).toBe(
      "& icacls.exe $StateDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F'",
    );
    expect(acl).toBeLessThan(cmds.findIndex((c) => c.startsWith('& sc.exe create')));
    expect(install).toMatch(/\$ServiceName = 'trellisd'/);
    expect(install).toMatch(/\$ErrorActionPreference = 'Stop'/);
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

  it('has no variable PowerShell would read as drive-qualified inside a string', () => {
    expect(driveQualifiedVariables(install)).toEqual([]);
    expect(driveQualifiedVariables(uninstall)).toEqual([]);
    expect(driveQualifiedVariables('"no $Daemon: here"')).toEqual(['"no $Daemon: here"']);
  });
});
