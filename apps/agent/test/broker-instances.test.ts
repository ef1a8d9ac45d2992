import type { Agent } from 'node:https';
import { request } from 'node:https';
import { generateKeyPair } from '@trellis/crypto';
import { type EnrollRequest, PROTOCOL_VERSION } from '@trellis/proto';
import { EnrollmentRejectedError, enrollWithAny } from '../src/control/enroll-client';
import { createBrokerAgent, TlsPinMismatchError, trustFromFlags } from '../src/trust/broker-trust';
import { BrokerDouble } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

/** Several instances of one broker, each with its own certificate (each its own data directory). */
describe('trusting and enrolling with several broker instances', () => {
  const certA = makeSelfSignedCert('instance-a');
  const certB = makeSelfSignedCert('instance-b');
  const stranger = makeSelfSignedCert('stranger');
  const a = new BrokerDouble(certA);
  const b = new BrokerDouble(certB);
  let urlA: string;
  let urlB: string;

  beforeAll(async () => {
    urlA = `https://127.0.0.1:${await a.listen(0)}/`;
    urlB = `https://127.0.0.1:${await b.listen(0)}/`;
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  const device = generateKeyPair();
  const body = (setupKey = 'test-setup-key-0001'): EnrollRequest => ({
    protocolVersion: PROTOCOL_VERSION,
    setupKey,
    publicKey: device.publicKey,
    hostname: 'h',
    os: 'linux',
  });
  const noNames = async (host: string): Promise<string[]> => {
    throw new Error(`no name expected, asked for ${host}`);
  };

  function statusOf(url: string, agent: Agent): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('/nothing', url), { agent }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('accepts every pinned instance on every URL, and nothing else', async () => {
    const both = createBrokerAgent({ fingerprints: [certA.fingerprint, certB.fingerprint] });
    expect(await statusOf(urlA, both)).toBe(404);
    expect(await statusOf(urlB, both)).toBe(404);
    const onlyA = createBrokerAgent({ fingerprints: [certA.fingerprint, stranger.fingerprint] });
    const err = await statusOf(urlB, onlyA).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TlsPinMismatchError);
    expect((err as Error).message).toContain(`pins ${certA.fingerprint} or ${stranger.fingerprint}`);
  });

  it('accepts several CA files', async () => {
    const agent = createBrokerAgent({ caFiles: [certA.certFile, certB.certFile] });
    expect(await statusOf(urlA, agent)).toBe(404);
    expect(await statusOf(urlB, agent)).toBe(404);
  });

  it('enrolls with the first instance that answers', async () => {
    const dead = `https://127.0.0.1:${await deadPort()}/`;
    const agent = createBrokerAgent({ fingerprints: [certB.fingerprint] });
    // The dead one refuses the connection; A's certificate is not pinned: both are skipped.
    const { response, url } = await enrollWithAny(
      [dead, urlA, urlB],
      agent,
      body(),
      device.privateKey,
      noNames,
    );
    expect(url).toBe(urlB);
    expect(b.devices.get(response.deviceId)).toBeDefined();
    expect(a.devices.size).toBe(0);
  });

  it('takes a refusal as final, and reports every failure when no instance answers', async () => {
    const agent = createBrokerAgent({ fingerprints: [certA.fingerprint, certB.fingerprint] });
    const devicesOfB = b.devices.size;
    await expect(
      enrollWithAny([urlA, urlB], agent, body('wrong-setup-key'), device.privateKey, noNames),
    ).rejects.toBeInstanceOf(EnrollmentRejectedError);
    expect(b.devices.size).toBe(devicesOfB); // B never asked
    const dead1 = `https://127.0.0.1:${await deadPort()}/`;
    const dead2 = `https://127.0.0.1:${await deadPort()}/`;
    await expect(enrollWithAny([dead1, dead2], agent, body(), device.privateKey, noNames)).rejects.toThrow(
      `no broker instance answered: broker unreachable at ${dead1} (ECONNREFUSED); broker unreachable at ${dead2} (ECONNREFUSED)`,
    );
  });

  it('turns repeated flags into a trust: singular fields for one, plural for several', () => {
    expect(trustFromFlags([], [], '/x')).toBeNull();
    expect(trustFromFlags([], [certA.fingerprint], '/x')).toEqual({ fingerprint: certA.fingerprint });
    expect(trustFromFlags([], [certA.fingerprint, certB.fingerprint], '/x')).toEqual({
      fingerprints: [certA.fingerprint, certB.fingerprint],
    });
    expect(trustFromFlags([certA.certFile], [], '/x')).toEqual({ caFile: certA.certFile });
    expect(() => trustFromFlags(['relative.pem', certB.certFile], [], '/nowhere')).toThrow(
      /ENOENT.*\/nowhere\/relative\.pem/,
    );
    expect(() => trustFromFlags([certA.certFile], [certB.fingerprint], '/x')).toThrow(
      'give either CA files or fingerprints, not both',
    );
  });
});

async function deadPort(): Promise<number> {
  const d = new BrokerDouble(makeSelfSignedCert('gone'));
  const port = await d.listen(0);
  await d.close();
  return port;
}
