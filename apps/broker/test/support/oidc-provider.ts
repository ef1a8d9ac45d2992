import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

/** A login name at the test provider and what it says of that user. */
export type TestOidcAccounts = Record<string, { email: string; email_verified: boolean }>;

export interface TestOidcProvider {
  issuer: string;
  port: number;
  /** A client (the broker) with its redirect URI; the provider knows no client before. */
  registerClient(client: {
    client_id: string;
    client_secret: string;
    redirect_uris: string[];
  }): Promise<void>;
  /** What the provider printed to stderr (its warnings and errors), for failing tests. */
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts oidc-provider-process.mjs (a real OpenID Connect provider) in a child process on loopback. */
export async function startOidcProvider(accounts: TestOidcAccounts, port = 0): Promise<TestOidcProvider> {
  const child: ChildProcess = fork(join(__dirname, 'oidc-provider-process.mjs'), [], {
    env: { ...process.env, OIDC_TEST_ACCOUNTS: JSON.stringify(accounts), OIDC_TEST_PORT: String(port) },
    execArgv: [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let errors = '';
  child.stderr?.on('data', (d: Buffer) => {
    errors += d.toString();
  });
  const issuer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oidc provider did not start: ${errors}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`oidc provider exited (${code}): ${errors}`)));
    child.on('message', (msg: { type?: string; issuer?: string }) => {
      if (msg.type === 'ready' && msg.issuer) {
        clearTimeout(timer);
        resolve(msg.issuer);
      }
    });
  });
  return {
    issuer,
    port: Number(new URL(issuer).port),
    registerClient: (client) =>
      new Promise<void>((resolve) => {
        const onMessage = (msg: { type?: string; clientId?: string }) => {
          if (msg.type !== 'client-registered' || msg.clientId !== client.client_id) return;
          child.off('message', onMessage);
          resolve();
        };
        child.on('message', onMessage);
        child.send({ type: 'client', client });
      }),
    stderr: () => errors,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
