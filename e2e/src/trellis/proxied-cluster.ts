import type { Host } from '../internet';
import type { Lab } from '../lab';
import { BROKER_PORT, BrokerRunner } from './broker';
import { HaproxyRunner, makeLabCertificate } from './haproxy';
import type { LabDatabase } from './lab-database';
import type { TrellisBuild } from './paths';
import { enrolled, type LabMember } from './proxy-lab';
import { RelayRunner } from './relay';

/** The public address every device and relay uses (HAProxy's host). */
export const PROXY_ADDRESS = '198.51.100.5';
const BROKER_ADDRESSES = ['198.51.100.10', '198.51.100.11', '198.51.100.12'];
/** Each instance's second address: its two reflectors classify NAT mappings (as in the NAT matrix). */
const REFLECTOR2_ADDRESSES = ['198.51.100.13', '198.51.100.14', '198.51.100.15'];

/** Three broker instances on one database behind one HAProxy (infra/compose/compose.yaml). */
export interface ProxiedCluster {
  proxy: HaproxyRunner;
  brokers: BrokerRunner[];
  /** The certificate devices and relays trust (`--ca-file`): HAProxy's, or every instance's. */
  certFile: string;
  /** HAProxy's name for instance `i` (its stats, `waitServer`). */
  serverName(i: number): string;
  /** Starts the first instance alone (it makes the account), then the others, then HAProxy. */
  start(): Promise<void>;
  /** Relays `relay1`, `relay2`, … of `build` on these hosts, reaching the instances through HAProxy; started. */
  startRelays(hosts: readonly Host[], build: TrellisBuild): Promise<RelayRunner[]>;
  /** A reusable setup key; each member's agent started and `trellis up` through HAProxy, then enrolled. */
  enroll(members: readonly LabMember[]): Promise<string>;
}

/**
 * `tls`: TLS ends at HAProxy, instances run --plain-http --proxy-protocol with the proxy's
 * certificate (compose's way). `passthrough`: the instances do TLS with one certificate and key
 * made for the proxy's address (brokers that cannot read a PROXY header). Each instance's UDP
 * reflectors stay on its own addresses: HAProxy passes only HTTPS.
 */
export async function proxiedCluster(
  lab: Lab,
  db: LabDatabase,
  mode: 'tls' | 'passthrough',
  build: TrellisBuild,
): Promise<ProxiedCluster> {
  const tls = makeLabCertificate(`${lab.runDir}/cluster-tls`, [PROXY_ADDRESS]);
  const proxyHost = await lab.addHost('lb', PROXY_ADDRESS);
  const hosts = await Promise.all(
    BROKER_ADDRESSES.map((a, i) => lab.addHost(`brk${i + 1}`, [a, REFLECTOR2_ADDRESSES[i]!])),
  );
  const serverName = (i: number) => `broker${i + 1}`;
  const proxy = new HaproxyRunner(
    lab,
    proxyHost,
    mode === 'tls' ? { kind: 'tls', pemFile: tls.pemFile } : { kind: 'passthrough' },
    BROKER_ADDRESSES.map((address, i) => ({ name: serverName(i), address, port: BROKER_PORT })),
  );
  const brokers = hosts.map((host, i) => {
    const reflectors = [
      ...['--reflector-host', BROKER_ADDRESSES[i]!],
      ...['--reflector2', `${REFLECTOR2_ADDRESSES[i]}:41642`],
    ];
    const args = mode === 'tls' ? ['--plain-http', '--proxy-protocol', ...reflectors] : reflectors;
    return new BrokerRunner(lab, host, build, args, {
      name: String(i + 1),
      databaseUrl: db.url,
      publicUrl: proxy.url,
      // Behind a TLS proxy the instance only names the proxy's certificate (for the fingerprint).
      tls: mode === 'tls' ? { certFile: tls.certFile } : { certFile: tls.certFile, keyFile: tls.keyFile },
    });
  });
  const certFile = tls.certFile;
  return {
    proxy,
    brokers,
    certFile,
    serverName,
    start: async () => {
      await brokers[0]!.start();
      await Promise.all(brokers.slice(1).map((b) => b.start()));
      await proxy.start();
    },
    startRelays: async (hosts, relayBuild) => {
      const relays: RelayRunner[] = [];
      for (const [i, host] of hosts.entries()) {
        const name = `relay${i + 1}`;
        const token = await brokers[0]!.createRelayToken(name);
        relays.push(new RelayRunner(lab, host, name, { url: proxy.url, certFile }, token, relayBuild));
      }
      await Promise.all(relays.map((r) => r.start()));
      return relays;
    },
    enroll: async (members) => {
      const setupKey = await brokers[0]!.createSetupKey();
      await Promise.all(members.map((m) => m.agent.start()));
      // All at once: each `trellis up` is a CLI process, seconds each on a busy machine.
      await Promise.all(members.map((m) => m.agent.up({ broker: proxy.url, setupKey, caFile: certFile })));
      await enrolled(members);
      return setupKey;
    },
  };
}
