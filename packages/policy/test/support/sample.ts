import type { PolicyDevice } from '@trellis/policy';

/** The policy of the design note, comments and all. */
export const SAMPLE_TEXT = `{
  // Groups of devices.
  "groups": { "group:eng": ["laptop-1", "user:alice@acme.com"], "group:ops": ["tag:ops"] },
  "tagOwners": { "tag:cams": ["group:ops"], "tag:db": ["user:bob@acme.com"], "tag:ops": [] },
  /* innernet-style blocks */
  "cidrs": { "site-a": "100.64.0.0/16", "site-a-cams": "100.64.8.0/24", "site-b": "100.65.0.0/16" },
  "associations": [["site-a", "site-b"]],
  "rules": [
    { "src": ["group:eng"], "dst": ["tag:db"], "ports": ["tcp:5432", "tcp:8000-8100", "udp:53", "icmp"] },
    { "src": ["group:ops"], "dst": ["tag:cams"], "ports": ["tcp:554"] }, // rtsp
  ],
  "tests": [ { "src": "laptop-1", "accept": ["db:5432", "db:udp/53", "db:icmp"], "deny": ["db:22"] } ]
}
`;

let n = 0;
export function device(name: string, address: string, tags: string[] = [], user?: string): PolicyDevice {
  n += 1;
  return { id: `id-${name}-${n}`, name, address, tags, ...(user === undefined ? {} : { user }) };
}

/** Devices outside every block unless given a site address. */
export const SAMPLE_DEVICES: PolicyDevice[] = [
  device('laptop-1', '100.100.0.1'),
  device('alice-pc', '100.100.0.2', [], 'Alice@acme.com'),
  device('db', '100.100.0.3', ['tag:db']),
  device('ops-box', '100.100.0.4', ['tag:ops']),
  device('cam-1', '100.100.0.5', ['tag:cams']),
  device('other', '100.100.0.6', [], 'carol@acme.com'),
];
