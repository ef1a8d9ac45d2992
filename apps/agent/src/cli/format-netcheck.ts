import type { StatusResponse } from '@trellis/proto';

const MAPPING_LABELS: Record<string, string> = {
  'endpoint-independent': 'endpoint-independent (punchable from anywhere)',
  'endpoint-dependent': 'endpoint-dependent (symmetric NAT: direct only with open peers; else relay)',
};

/** `trellis netcheck`: what this device knows about its NAT, from the daemon's status. */
export function formatNetcheck(s: StatusResponse): string {
  const n = s.netinfo;
  const lines: string[] = [];
  lines.push(
    `broker:        ${s.broker.url ?? '(not enrolled)'} ${s.broker.connected ? 'connected' : 'not connected'}`,
  );
  lines.push(`broker rtt:    ${n?.brokerRttMs == null ? 'unknown' : `${Math.round(n.brokerRttMs)} ms`}`);
  const reflectors = s.self?.reflectors ?? [];
  lines.push(`reflectors:    ${reflectors.map((r) => r.endpoint).join(', ') || 'none'}`);
  lines.push(`reflexive:     ${n?.reflexive.join(', ') || 'none seen yet'}`);
  const mapping = n?.mappingType ?? null;
  const mappingText =
    mapping === null
      ? reflectors.length < 2
        ? 'unknown (needs two reflectors)'
        : 'unknown (not classified yet)'
      : (MAPPING_LABELS[mapping] ?? mapping);
  lines.push(`NAT mapping:   ${mappingText}`);
  lines.push(`port mapping:  ${n?.portMapped ? `${n.portMapped} (UPnP-IGD / NAT-PMP / PCP)` : 'none'}`);
  return `${lines.join('\n')}\n`;
}
