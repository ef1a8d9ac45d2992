import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  API_PATHS,
  DeviceAuthDecisionResponse,
  DeviceAuthInfo,
  LoginResponse,
  StatusResponse,
} from '@trellis/proto';
import {
  BrokerRunner,
  type Device,
  exec,
  type Host,
  Lab,
  type LabProcess,
  RoutedRouter,
  waitFor,
} from '../src';
import { brokerRequest } from '../src/trellis/broker-http';
import { InstallRoot, packageProcesses, present, unitCommand } from '../src/trellis/install-root';
import { cleanEnv, repoRoot, trellisBuild } from '../src/trellis/paths';
import { labIt, requireRoot } from './support/lab-test';

const OWNER = { email: 'admin@trellis.local', password: 'deb-package-test-password' };
const UNIT = '/lib/systemd/system/trellisd.service';
const WANTS = '/etc/systemd/system/multi-user.target.wants/trellisd.service';
const APT_ENV = cleanEnv({ DEBIAN_FRONTEND: 'noninteractive' });

/**
 * The installable agent (issue 13): `scripts/package` builds the .deb; apt installs it into a
 * throwaway overlay of this machine's root (the host is not changed); trellisd runs from the
 * installed files as the unit's ExecStart says, in a lab device's network; `trellis up --broker`
 * signs in with the device flow, approved through the broker's API; `apt remove` stops trellisd
 * and leaves no process and no unit, `apt purge` no state.
 *  internet: broker brk   site s (routed): laptop (the package installed)
 */
describe('the .deb: built by scripts/package, installed, signed in with the device flow, removed', () => {
  let lab: Lab | undefined;
  let root: InstallRoot | undefined;
  let brokerHost: Host;
  let broker: BrokerRunner;
  let laptop: Device;
  let ifname: string;
  let deb: string;
  let daemon: LabProcess;
  let packageOutput: string;
  let hostStatusBefore: string;
  const L = () => lab;
  const dpkgStatus = async (inRoot: boolean) => {
    // dpkg-query's format field, not a template placeholder.
    const argv = ['dpkg-query', '-W', '-f', '$' + '{Status}', 'trellis'];
    const run = inRoot ? root!.exec(argv) : exec(null, argv);
    return run.then(
      (r) => r.stdout,
      () => 'not installed',
    );
  };

  beforeAll(async () => {
    requireRoot();
    const build = trellisBuild();
    hostStatusBefore = await dpkgStatus(false);
    lab = await Lab.create();
    brokerHost = await lab.addHost('brk', '198.51.100.10');
    const site = await lab.addSite('s', new RoutedRouter(), ['laptop']);
    laptop = site.device('laptop');
    ifname = lab.wgInterfaceName();
    broker = new BrokerRunner(lab, brokerHost, build);
    const built = await exec(null, ['bash', join(repoRoot(), 'scripts/package'), '--out', lab.runDir], {
      timeoutMs: 240_000,
    });
    packageOutput = built.stdout;
    deb = /^package: (\/\S+\.deb)$/m.exec(packageOutput)?.[1] ?? '';
    root = await InstallRoot.create(lab, [lab.runDir]);
  }, 300_000);

  afterAll(async () => {
    await root?.destroy();
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  it('scripts/package stops with a clear message when the build is missing', async () => {
    // A checkout with the scripts and the agent's package.json but no build output.
    const fake = mkdtempSync(join(tmpdir(), 'trellis-package-'));
    mkdirSync(join(fake, 'scripts'));
    mkdirSync(join(fake, 'apps/agent'), { recursive: true });
    for (const f of ['package', 'lib.sh', 'package-tree.mjs'])
      copyFileSync(join(repoRoot(), 'scripts', f), join(fake, 'scripts', f));
    copyFileSync(join(repoRoot(), 'apps/agent/package.json'), join(fake, 'apps/agent/package.json'));
    const failed = await exec(null, ['bash', join(fake, 'scripts/package'), '--out', join(fake, 'out')]).then(
      () => null,
      (err: { stderr: string }) => err.stderr,
    );
    expect(failed).toMatch(/the build is missing \(apps\/agent\/dist\/cli\.js .*\): run `pnpm build`/);
  });

  labIt(
    L,
    'scripts/package says where the .deb is and what is in it; apt installs it into a clean root: trellis and trellisd on PATH, the unit installed, valid and enabled',
    async () => {
      expect(deb).toMatch(/\/trellis_\d+\.\d+\.\d+_all\.deb$/);
      expect(packageOutput).toMatch(/^size: \d+ bytes \(.+\), installed \d+ KiB, \d+ files$/m);
      expect(packageOutput).toMatch(
        /^depends: nodejs \(>= 20\.19\), wireguard-tools, nftables, iproute2; recommends: wireguard-go$/m,
      );
      expect(packageOutput).toContain('/usr/lib/trellis                       the agent (dist) and');

      const installed = await root!.exec(['apt-get', 'install', '-y', deb], {
        env: APT_ENV,
        timeoutMs: 180_000,
      });
      expect(installed.stdout).toContain('Setting up trellis');
      expect(await dpkgStatus(true)).toBe('install ok installed');
      const which = await root!.exec(['sh', '-c', 'command -v trellis; command -v trellisd']);
      expect(which.stdout.split('\n').filter(Boolean)).toEqual(['/usr/bin/trellis', '/usr/bin/trellisd']);
      expect((await root!.exec(['trellis', '--help'])).stdout).toMatch(/^Usage: trellis /);
      expect((await root!.exec(['trellisd', '--help'])).stdout).toMatch(/^Usage: trellisd /);

      // The unit is the repository's, enabled (multi-user.target wants it) and valid for systemd.
      const unit = readFileSync(root!.hostPath(UNIT), 'utf8');
      expect(unit).toBe(readFileSync(join(repoRoot(), 'infra/systemd/trellisd.service'), 'utf8'));
      expect(readlinkSync(root!.hostPath(WANTS))).toBe(UNIT);
      const verify = await root!.exec(['systemd-analyze', 'verify', UNIT]);
      expect(verify.stderr).not.toContain('trellisd');
      expect(lstatSync(root!.hostPath('/var/lib/trellis')).mode & 0o777).toBe(0o700);

      // The host did not change: no package, no files, no mount.
      expect(await dpkgStatus(false)).toBe(hostStatusBefore);
      expect(present('/usr/lib/trellis/dist/daemon.js')).toBe(false);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('trellis-install-root');
    },
    240_000,
  );

  labIt(
    L,
    'trellisd runs as the unit starts it; `trellis up --broker URL` prints a code, the owner approves it through the API, the device connects',
    async () => {
      await broker.start();
      await broker.admin([
        ...['accounts', 'reset-owner', '--data-dir', broker.dataDir, '--account', 'default'],
        ...['--password', OWNER.password],
      ]);
      // systemd's way: a clean environment, the unit's Environment=, its ExecStart. The lab adds
      // its interface name (wireguard-go's sockets are shared by every namespace) and the DNS stub.
      const { argv, env } = unitCommand(readFileSync(root!.hostPath(UNIT), 'utf8'));
      expect(argv).toEqual(['/usr/bin/trellisd']);
      const labEnv = [`TRELLIS_INTERFACE=${ifname}`, 'TRELLIS_DNS=stub'];
      daemon = root!.spawn(
        laptop.ns,
        ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...env, ...labEnv, ...argv],
        {
          logName: 'trellisd-installed',
        },
      );
      await daemon.waitForLine(/trellisd ready/, 60_000);
      expect(readFileSync(`/proc/${daemon.pid}/comm`, 'utf8').trim()).toBe('trellisd');

      const up = root!.spawn(
        laptop.ns,
        [
          ...['/usr/bin/trellis', 'up', '--broker', broker.url, '--ca-file', broker.certFile],
          ...['--name', 'laptop', '--no-qr'],
        ],
        { env: cleanEnv(), logName: 'trellis-up-installed' },
      );
      const code = (await up.waitForLine(/^\s+code\s+([A-Z]{4}-[A-Z]{4})$/, 60_000))[1]!;

      const login = await brokerRequest(broker, 'POST', API_PATHS.login, { body: OWNER });
      expect(login.status).toBe(200);
      const token = LoginResponse.parse(login.json).token;
      const request = await brokerRequest(broker, 'GET', `${API_PATHS.deviceAuthRequests}/${code}`, {
        token,
      });
      expect(request.status).toBe(200);
      expect(DeviceAuthInfo.parse(request.json)).toMatchObject({
        name: 'laptop',
        os: expect.stringMatching(/^linux/),
      });
      const decided = await brokerRequest(broker, 'POST', API_PATHS.deviceAuthRequests, {
        token,
        body: { userCode: code, approve: true },
      });
      expect(decided.status).toBe(200);
      expect(DeviceAuthDecisionResponse.parse(decided.json)).toMatchObject({
        approved: true,
        name: 'laptop',
      });

      await up.exited;
      expect(up.exitCode).toBe(0);
      expect(up.lines.join('\n')).toMatch(/up: laptop \(100\.\d+\.\d+\.\d+\), connected to/);
      const status = await waitFor(
        async () => {
          const s = StatusResponse.parse(
            JSON.parse((await root!.exec(['trellis', 'status', '--json'])).stdout),
          );
          return s.state === 'connected' && s.self ? s : null;
        },
        { timeoutMs: 30_000, what: 'the installed agent connected' },
      );
      expect(status.self?.name).toBe('laptop');
      expect(status.interface.name).toBe(ifname);
      const listed = await broker.devices();
      expect(listed.map((d) => d.name)).toEqual(['laptop']);
      await laptop.ns.exec(['ip', 'link', 'show', 'dev', ifname]);
    },
    180_000,
  );

  labIt(
    L,
    '`apt remove` stops trellisd (interface gone) and leaves no process and no unit; `apt purge` removes the state',
    async () => {
      const removed = await root!.exec(['apt-get', 'remove', '-y', 'trellis'], {
        env: APT_ENV,
        timeoutMs: 120_000,
      });
      expect(removed.stderr + removed.stdout).toMatch(/trellis: stopping trellisd \(pid \d+\)/);
      await daemon.exited;
      expect(daemon.exitCode).toBe(0); // SIGTERM: a clean shutdown, not the SIGKILL fallback
      expect(packageProcesses(ifname)).toEqual([]);
      await expect(laptop.ns.exec(['ip', 'link', 'show', 'dev', ifname])).rejects.toThrow();

      expect(present(root!.hostPath(UNIT))).toBe(false);
      expect(present(root!.hostPath(WANTS))).toBe(false);
      expect(present(root!.hostPath('/usr/bin/trellisd'))).toBe(false);
      expect(present(root!.hostPath('/usr/lib/trellis'))).toBe(false);
      // Removed, not purged: the enrollment stays for a reinstall.
      expect(await dpkgStatus(true)).toBe('deinstall ok config-files');
      expect(present(root!.hostPath('/var/lib/trellis/enrollment.json'))).toBe(true);

      await root!.exec(['apt-get', 'purge', '-y', 'trellis'], { env: APT_ENV, timeoutMs: 120_000 });
      expect(present(root!.hostPath('/var/lib/trellis'))).toBe(false);
      expect(
        present(root!.hostPath('/var/lib/systemd/deb-systemd-helper-enabled/trellisd.service.dsh-also')),
      ).toBe(false);
      expect(await dpkgStatus(true)).toBe('not installed');
    },
    180_000,
  );
});
