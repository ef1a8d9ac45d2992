import {
  FUZZ_CASES,
  FUZZ_SEED,
  hasControlCharacter,
  jsonMutations,
} from '../../../packages/proto/test/support/json-fuzz';
import { parseIpcLine } from '../src/ipc/ipc-server';

const lines = [
  {
    op: 'up',
    brokers: ['https://broker.example:8443', 'https://10.0.0.2:8443'],
    setupKey: 'tsk_abcdefghijklmnop',
    name: 'laptop',
    trust: { fingerprints: [Array(32).fill('AB').join(':')], caFile: '/etc/trellis/ca.pem' },
  },
  { op: 'down' },
  { op: 'status' },
];

describe(`agent control socket lines under fuzzing (${FUZZ_CASES} cases, seed ${FUZZ_SEED})`, () => {
  it('the valid samples are accepted', () => {
    for (const l of lines) expect(parseIpcLine(JSON.stringify(l)).ok).toBe(true);
  });

  it('never throws; refusals carry a reason; nothing with a control character is accepted', () => {
    let accepted = 0;
    lines.forEach((sample, n) => {
      for (const text of jsonMutations(sample, Math.ceil(FUZZ_CASES / lines.length), FUZZ_SEED + n)) {
        const r = parseIpcLine(text);
        if (!r.ok) {
          if (r.error.length === 0) throw new Error(`refused without a reason: ${text.slice(0, 200)}`);
          continue;
        }
        accepted++;
        if (hasControlCharacter(r.request))
          throw new Error(`accepted a control character: ${text.slice(0, 200)}`);
      }
    });
    expect(accepted).toBeGreaterThan(0);
  });
});
