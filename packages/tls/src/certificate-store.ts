import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned, fingerprintOf } from './self-signed';

export interface TlsMaterial {
  cert: string;
  key: string;
  certFile: string;
  fingerprint: string;
}

/** Every name a client on this machine or the network might use to reach this server. */
export function defaultSans(extra: string[], publicUrl?: string): string[] {
  const sans = ['localhost', '127.0.0.1', '::1', hostname()];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) sans.push(a.address.replace(/%.*$/, ''));
  }
  if (publicUrl) sans.push(new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''));
  return [...sans, ...extra];
}

/**
 * The configured certificate, or the self-signed one kept in `<dataDir>/tls`, created on first
 * start. An existing generated certificate is reused as is so the fingerprint stays stable.
 */
export async function loadOrCreateTls(opts: {
  dataDir: string;
  certFile?: string;
  keyFile?: string;
  sans: string[];
  /** Subject CN of a generated certificate; the broker's is the default. */
  commonName?: string;
}): Promise<TlsMaterial> {
  if (opts.certFile || opts.keyFile) {
    if (!opts.certFile || !opts.keyFile) throw new Error('--tls-cert and --tls-key must be given together');
    const cert = readFileSync(opts.certFile, 'utf8');
    return {
      cert,
      key: readFileSync(opts.keyFile, 'utf8'),
      certFile: opts.certFile,
      fingerprint: fingerprintOf(cert),
    };
  }
  const dir = join(opts.dataDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = await createSelfSigned(opts.commonName ?? 'trellis-broker', opts.sans);
    writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
    writeFileSync(certFile, pair.certPem, { mode: 0o644 });
  }
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), certFile, fingerprint: fingerprintOf(cert) };
}
