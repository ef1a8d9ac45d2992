/**
 * `node bench/dist/profile-summary.js FILE.cpuprofile [--top 40]`: where a V8 CPU profile's time
 * went, as text — self time by function, inclusive time by function (each sample counted once per
 * function on its stack) and self time by file — for a machine without a browser.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const label = (n: ProfileNode) => {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
  return `${functionName || '(anonymous)'} ${file ? `${shortFile(file)}:${lineNumber + 1}` : ''}`.trim();
};
const shortFile = (file: string) => file.replace(/^.*\/(apps|packages)\//, '$1/');

export function summarise(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    // Each sample's time is the gap to the next one (V8's timeDeltas are the gap before it).
    const us = profile.timeDeltas[i + 1] ?? 0;
    total += us;
    const leaf = byId.get(id);
    if (!leaf) return;
    const leafLabel = label(leaf);
    self.set(leafLabel, (self.get(leafLabel) ?? 0) + us);
    const file = leaf.callFrame.url ? shortFile(leaf.callFrame.url.replace(/^file:\/\//, '')) : leafLabel;
    files.set(file, (files.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + us);
    }
  });
  const table = (title: string, m: Map<string, number>) => {
    const rows = [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
    const lines = rows.map(
      ([k, us]) =>
        `${(us / 1000).toFixed(1).padStart(10)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`,
    );
    return [`${title}:`, ...lines].join('\n');
  };
  return [
    `profile: ${(total / 1000).toFixed(0)} ms sampled over ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms`,
    table('self time by function', self),
    table('inclusive time by function', inclusive),
    table('self time by file', files),
  ].join('\n\n');
}

function main(): void {
  const a = process.argv.slice(2);
  const file = a.find((x) => !x.startsWith('--'));
  if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [--top N]');
  const i = a.indexOf('--top');
  const top = i >= 0 ? Number(a[i + 1]) : 40;
  console.log(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top));
}

if (require.main === module) main();
