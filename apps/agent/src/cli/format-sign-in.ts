import type { SignInPrompt } from '@trellis/proto';
import { renderUnicodeCompact } from 'uqr';

/**
 * What `trellis up` prints while a sign-in waits for approval: where to go, the code, and a QR
 * code of the page with the code filled in (for signing in from a phone).
 */
export function formatSignIn(p: SignInPrompt, qr: boolean): string {
  const expires = new Date(p.expiresAt);
  const minutes = Math.max(1, Math.round((expires.getTime() - Date.now()) / 60_000));
  const lines = [
    'To add this device to your mesh, sign in and approve it:',
    '',
    `  open   ${p.verificationUri}`,
    `  code   ${p.userCode}`,
    '',
    `or open ${p.verificationUriComplete} (code filled in).`,
  ];
  if (qr) lines.push('', renderUnicodeCompact(p.verificationUriComplete, { border: 1 }));
  lines.push(
    '',
    `The code expires in ${minutes} min (${expires.toLocaleTimeString()}). Waiting for approval…`,
  );
  return `${lines.join('\n')}\n`;
}
