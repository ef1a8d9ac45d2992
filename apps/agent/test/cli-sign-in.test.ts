import { formatSignIn } from '../src/cli/format-sign-in';
import { formatStatus } from '../src/cli/format-status';
import { statusFixture } from './helpers/status-fixture';

const prompt = {
  broker: 'https://broker.example:8443/',
  verificationUri: 'https://broker.example:8443/device',
  verificationUriComplete: 'https://broker.example:8443/device#code=BCDF-GHJK',
  userCode: 'BCDF-GHJK',
  expiresAt: new Date(Date.now() + 600_000).toISOString(),
};

describe('trellis up: the sign-in prompt', () => {
  it('says where to go and which code to type, with a QR code of the page with the code filled in', () => {
    const text = formatSignIn(prompt, true);
    expect(text).toContain('open   https://broker.example:8443/device');
    expect(text).toContain('code   BCDF-GHJK');
    expect(text).toContain('https://broker.example:8443/device#code=BCDF-GHJK');
    expect(text).toMatch(/expires in 10 min/);
    // A QR code: rows of block characters, all as wide as each other.
    const rows = text.split('\n').filter((l) => /^[█▀▄ ]+$/.test(l) && l.includes('█'));
    expect(rows.length).toBeGreaterThan(10);
    expect(new Set(rows.map((r) => r.length)).size).toBe(1);
  });

  it('--no-qr leaves the QR code out', () => {
    expect(formatSignIn(prompt, false)).not.toMatch(/█/);
  });

  it('trellis status shows a pending sign-in', () => {
    const s = { ...statusFixture(), state: 'signing-in' as const, signIn: prompt };
    expect(formatStatus(s)).toMatch(/sign in: {4}https:\/\/broker\.example:8443\/device {2}code BCDF-GHJK/);
  });
});
