import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  key: string;
  cert: string;
  certFile: string;
  /** SHA-256 of the DER certificate, upper-case colon hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
}

/** A throwaway self-signed certificate for 127.0.0.1/localhost, made with openssl. */
export function makeSelfSignedCert(cn = 'trellis-test-broker'): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  const fpLine = execFileSync('openssl', [
    'x509',
    '-in',
    certFile,
    '-noout',
    '-fingerprint',
    '-sha256',
  ]).toString();
  return {
    key: readFileSync(keyFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    certFile,
    fingerprint: fpLine.trim().split('=')[1]!,
  };
}
