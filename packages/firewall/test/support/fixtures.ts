import type { InboundPolicy } from '../../src';

export const SELF = '100.64.0.1';

/** Something of everything: allow-all, merged overlapping spans, a port-less tcp rule, a peer allowed nothing. */
export const BEFORE: InboundPolicy = {
  interfaceName: 'trellis0',
  selfAddress: SELF,
  peers: [
    { address: '100.64.0.2', allow: [{}] },
    {
      address: '100.64.0.3',
      allow: [
        {
          proto: 'tcp',
          ports: [
            [22, 22],
            [80, 90],
            [85, 100],
          ],
        },
        { proto: 'udp', ports: [[53, 53]] },
        { proto: 'icmp' },
      ],
    },
    { address: '100.64.0.10', allow: [{ proto: 'tcp' }] },
    { address: '100.64.1.5', allow: [] },
    {
      address: '100.64.0.4',
      allow: [
        {
          proto: 'tcp',
          ports: [
            [80, 100],
            [22, 22],
          ],
        },
        { proto: 'udp', ports: [[53, 53]] },
      ],
    },
  ],
};

/** .2 narrowed to icmp, .3 loses 80-100, .10 gone, .11 new. */
export const AFTER: InboundPolicy = {
  ...BEFORE,
  peers: [
    { address: '100.64.0.2', allow: [{ proto: 'icmp' }] },
    {
      address: '100.64.0.3',
      allow: [{ proto: 'tcp', ports: [[22, 22]] }, { proto: 'udp', ports: [[53, 53]] }, { proto: 'icmp' }],
    },
    BEFORE.peers[4]!,
    { address: '100.64.0.11', allow: [{ proto: 'udp', ports: [[5000, 5010]] }] },
  ],
};

/** `count` peers from 100.64.1.0 on, each with a few spans; `variant` shifts one peer's ports. */
export function manyPeers(
  count: number,
  variant = 0,
  interfaceName = 'trellis0',
  selfAddress = SELF,
): InboundPolicy {
  const peers = Array.from({ length: count }, (_, i) => {
    const address = `100.64.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    const shift = i === 1 ? variant : 0;
    return {
      address,
      allow:
        i % 10 === 0
          ? [{}]
          : [
              {
                proto: 'tcp' as const,
                ports: [[22, 22] as [number, number], [8000 + shift, 8010 + shift] as [number, number]],
              },
              { proto: 'udp' as const, ports: [[5000 + (i % 7), 5000 + (i % 7)] as [number, number]] },
              ...(i % 3 === 0 ? [{ proto: 'icmp' as const }] : []),
            ],
    };
  });
  return { interfaceName, selfAddress, peers };
}
