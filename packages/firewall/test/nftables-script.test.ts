import {
  NFT_INPUT_RULES,
  NFT_OUTPUT_RULES,
  nftFullScript,
  nftIncrementalScript,
  nftRemoveScript,
  nftState,
  nftStateHash,
  normalizeInbound,
} from '../src';
import { AFTER, BEFORE } from './support/fixtures';
import { expectGolden } from './support/golden';

const before = nftState(normalizeInbound(BEFORE));
const after = nftState(normalizeInbound(AFTER));

describe('nftables scripts', () => {
  it('full apply: one transaction that replaces table inet trellis and nothing else', () => {
    const script = nftFullScript(before);
    expectGolden('nft-full.nft', script);
    expect(script.startsWith('add table inet trellis\ndelete table inet trellis\ntable inet trellis {')).toBe(
      true,
    );
    expect(script).not.toMatch(/flush ruleset|^\s*table (?!inet trellis)/m);
    const chainRules = (name: string) => {
      const body = script.split(`chain ${name} {\n`)[1]!.split('\t}')[0]!;
      return body.split('\n').filter((l) => l.trim() && !l.includes('type filter hook')).length;
    };
    expect(chainRules('input')).toBe(NFT_INPUT_RULES);
    expect(chainRules('output')).toBe(NFT_OUTPUT_RULES);
  });

  it('an empty policy still drops everything on the interface', () => {
    expectGolden('nft-full-empty.nft', nftFullScript(nftState(normalizeInbound({ ...BEFORE, peers: [] }))));
  });

  it('incremental apply: element deletions, then additions, and the new state digest', () => {
    const script = nftIncrementalScript(before, after);
    expect(script).not.toBeNull();
    expectGolden('nft-incremental.nft', script!);
    expect(script).not.toMatch(/table|chain|rule|flush/);
  });

  it('no incremental path when the interface or the address changes', () => {
    expect(nftIncrementalScript(before, { ...after, interfaceName: 'wg1' })).toBeNull();
    expect(nftIncrementalScript(before, { ...after, selfAddress: '100.64.0.9' })).toBeNull();
  });

  it('the digest covers every input and is stable', () => {
    expect(nftStateHash(before)).toBe(nftStateHash(nftState(normalizeInbound(BEFORE))));
    expect(nftStateHash(before)).toMatch(/^trellis-v1:[0-9a-f]{64}$/);
    const variants = [after, { ...before, interfaceName: 'x' }, { ...before, selfAddress: '100.64.0.9' }];
    for (const v of variants) expect(nftStateHash(v)).not.toBe(nftStateHash(before));
  });

  it('remove deletes only the table, even when it is absent', () => {
    expect(nftRemoveScript()).toBe('add table inet trellis\ndelete table inet trellis\n');
  });
});
