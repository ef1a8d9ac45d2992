import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Doc, flag, INFRA, portOf, readYaml, runs } from './helpers';

const K8S = join(INFRA, 'k8s');
const MANIFESTS = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .map((f) => join(K8S, f));
const docs: Doc[] = MANIFESTS.flatMap((f) => readYaml(f));
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in infra/k8s`);
  return d;
};
const broker = find('Deployment', 'trellis-broker');
const brokerPod = broker.spec.template;
const brokerC = brokerPod.spec.containers[0];
const relays: Doc[] = docs.filter(
  (d) => d.kind === 'Deployment' && d.metadata.name.startsWith('trellis-relay'),
);
const portByName = (c: Doc, name: string): Doc => {
  const p = c.ports.find((x: Doc) => x.name === name);
  if (!p) throw new Error(`container ${c.name} has no port ${name}`);
  return p;
};

/** Names of Secrets read anywhere below `node`: secretKeyRef and secret volumes. */
function secretsUsed(node: Doc, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const x of node) secretsUsed(x, out);
  else if (node && typeof node === 'object') {
    if (node.secretKeyRef?.name) out.add(node.secretKeyRef.name);
    if (node.secret?.secretName) out.add(node.secret.secretName);
    for (const v of Object.values(node)) secretsUsed(v, out);
  }
  return out;
}

interface Validation {
  file: string;
  kind: string;
  name: string;
  errors: string[];
}
function validate(files: string[]): Validation[] {
  const out = execFileSync(process.execPath, [join(__dirname, 'k8s-validate.mjs'), ...files], {
    cwd: join(__dirname, '..', '..'),
    encoding: 'utf8',
  });
  return JSON.parse(out) as Validation[];
}

describe('Kubernetes manifests (infra/k8s)', () => {
  it('every object is valid against the Kubernetes API schemas', () => {
    const results = validate(MANIFESTS);
    expect(results.length).toBe(docs.length);
    expect(results.filter((r) => r.errors.length > 0)).toEqual([]);
  });

  it('the schema check rejects a broken manifest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-k8s-'));
    const broken = readFileSync(join(K8S, 'broker.yaml'), 'utf8')
      .replace('replicas: 3', 'replicas: three')
      .replace('containerPort: 8443', 'containerPort: https');
    writeFileSync(join(dir, 'broker.yaml'), broken);
    const errors = validate([join(dir, 'broker.yaml')]).flatMap((r) => r.errors);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining('/spec/replicas'),
        expect.stringContaining('containerPort'),
      ]),
    );
  });

  it('kustomization.yaml applies every manifest but the Secrets example, which names every Secret used', () => {
    const [k] = readYaml(join(K8S, 'kustomization.yaml'));
    const files = MANIFESTS.map((f) => f.slice(K8S.length + 1)).filter((f) => f !== 'secrets.example.yaml');
    expect([...k.resources].sort()).toEqual(files.sort());
    const secrets = readYaml(join(K8S, 'secrets.example.yaml')).map((s) => s.metadata.name);
    const used = secretsUsed(docs.filter((d) => d.kind !== 'Secret'));
    expect(used.size).toBeGreaterThanOrEqual(4);
    for (const s of used) expect(secrets).toContain(s);
    if (runs('kubectl', ['version', '--client'])) {
      const rendered = execFileSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' });
      expect(rendered).toContain('kind: PodDisruptionBudget');
    }
  });

  it('the broker runs several replicas, one per node, and a PDB keeps all but one of them', () => {
    expect(broker.spec.replicas).toBeGreaterThan(1);
    const pdb = find('PodDisruptionBudget', 'trellis-broker');
    const labels = brokerPod.metadata.labels;
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(labels[k]).toBe(v);
    expect(broker.spec.selector.matchLabels).toEqual(pdb.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(broker.spec.replicas);
    const anti = brokerPod.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
    expect(anti.topologyKey).toBe('kubernetes.io/hostname');
    expect(anti.labelSelector.matchLabels).toEqual(broker.spec.selector.matchLabels);
  });

  it('the broker is ready on /healthz over HTTPS on the port it listens on', () => {
    const probe = brokerC.readinessProbe.httpGet;
    expect(probe.path).toBe('/healthz');
    expect(probe.scheme).toBe('HTTPS');
    expect(portByName(brokerC, probe.port).containerPort).toBe(portOf(flag(brokerC.args, '--listen')!));
  });

  it('PostgreSQL comes from a Secret, never a literal', () => {
    const env = brokerC.env.find((e: Doc) => e.name === 'DATABASE_URL');
    expect(env.value).toBeUndefined();
    expect(env.valueFrom.secretKeyRef).toEqual({ name: 'trellis-database', key: 'url' });
  });

  it('Prometheus scrape annotations name a declared port and /metrics', () => {
    for (const pod of [brokerPod, ...relays.map((r) => r.spec.template)]) {
      const a = pod.metadata.annotations;
      expect(a['prometheus.io/scrape']).toBe('true');
      expect(a['prometheus.io/path']).toBe('/metrics');
      const ports = pod.spec.containers[0].ports.map((p: Doc) => p.containerPort);
      expect(ports).toContain(Number(a['prometheus.io/port']));
    }
    expect(brokerPod.metadata.annotations['prometheus.io/scheme']).toBe('https');
  });

  it("each broker's reflector is a UDP host port on its node, announced as the node's address", () => {
    const port = portByName(brokerC, 'reflector');
    expect(port.protocol).toBe('UDP');
    expect(port.hostPort).toBe(port.containerPort);
    expect(Number(flag(brokerC.args, '--reflector-port'))).toBe(port.containerPort);
    expect(flag(brokerC.args, '--reflector-host')).toBe('$(NODE_IP)');
    const nodeIp = brokerC.env.find((e: Doc) => e.name === 'NODE_IP');
    expect(nodeIp.valueFrom.fieldRef.fieldPath).toBe('status.hostIP');
  });

  it('Services reach the broker on declared ports; HTTPS keeps client addresses', () => {
    const services = docs.filter((d) => d.kind === 'Service');
    expect(services.length).toBeGreaterThanOrEqual(3);
    for (const s of services) {
      expect(s.spec.selector).toEqual(broker.spec.selector.matchLabels);
      for (const p of s.spec.ports) {
        const target = portByName(brokerC, p.targetPort);
        expect(target.protocol).toBe(p.protocol);
      }
    }
    const https = find('Service', 'trellis-broker');
    expect(https.spec.externalTrafficPolicy).toBe('Local');
    expect(portByName(brokerC, https.spec.ports[0].targetPort).containerPort).toBe(8443);
  });

  it('every $(VAR) in arguments is defined for the container', () => {
    const config = find('ConfigMap', 'trellis-config').data;
    for (const pod of [brokerPod, ...relays.map((r) => r.spec.template)]) {
      const c = pod.spec.containers[0];
      const defined = new Set([...c.env.map((e: Doc) => e.name), ...Object.keys(config)]);
      for (const a of c.args as string[])
        for (const [, v] of a.matchAll(/\$\(([A-Z_]+)\)/g)) expect(defined).toContain(v);
    }
  });

  it("relays: one token each, the host's network, host ports equal to their flags", () => {
    expect(relays.length).toBeGreaterThanOrEqual(2);
    const tokens = relays.map(
      (r) =>
        r.spec.template.spec.containers[0].env.find((e: Doc) => e.name === 'TRELLIS_RELAY_TOKEN').valueFrom,
    );
    expect(new Set(tokens.map((t) => t.secretKeyRef.name)).size).toBe(relays.length);
    for (const r of relays) {
      const spec = r.spec.template.spec;
      const c = spec.containers[0];
      expect(r.spec.replicas).toBe(1);
      expect(r.spec.strategy.type).toBe('Recreate');
      expect(spec.hostNetwork).toBe(true);
      for (const p of c.ports) expect(p.hostPort).toBe(p.containerPort);
      expect(portByName(c, 'tcp-fallback').containerPort).toBe(portOf(flag(c.args, '--tcp-listen')!));
      expect(portByName(c, 'tcp-fallback').containerPort).toBe(portOf(flag(c.args, '--tcp-public-url')!));
      expect(portByName(c, 'reflector')).toMatchObject({
        containerPort: Number(flag(c.args, '--reflector-port')),
        protocol: 'UDP',
      });
      expect(portByName(c, 'metrics').containerPort).toBe(portOf(flag(c.args, '--metrics-listen')!));
      expect(flag(c.args, '--ports')).toMatch(/^\d+-\d+$/);
      expect(c.securityContext.capabilities.add).toEqual(expect.arrayContaining(['NET_BIND_SERVICE']));
    }
    const nodes = relays.map((r) => JSON.stringify(r.spec.template.spec.nodeSelector));
    expect(new Set(nodes).size).toBe(relays.length);
  });
});
