import { API_PATHS } from '@trellis/proto';
import { type BrokerHandle, type BrokerOptions, startBroker } from '../../src';
import { createLogger } from '../../src/logger';
import type { Backend } from './backends';
import { httpClient } from './http-client';
import { TestDevice } from './test-device';

export interface TestBroker {
  broker: BrokerHandle;
  api: ReturnType<typeof httpClient>;
  /** Bearer token of the bootstrap owner of account `default`. */
  ownerToken: string;
  setupKey: string;
  device(): TestDevice;
  /** A second account with its own owner token and setup key. */
  addAccount(name: string): Promise<{ token: string; setupKey: string; accountId: string }>;
  /** A user with the member role in account `default`; returns its bearer token. */
  addMember(email: string): Promise<string>;
  close(): Promise<void>;
}

/** Log lines are collected (and can be asserted on) instead of printed. */
export class LogSink {
  readonly lines: Array<Record<string, unknown>> = [];
  write(line: string): void {
    this.lines.push(JSON.parse(line));
  }
}

export async function startTestBroker(
  backend: Backend,
  overrides: Partial<BrokerOptions> = {},
  logs = new LogSink(),
) {
  const broker = await startBroker({
    dataDir: backend.dataDir,
    databaseUrl: backend.databaseUrl,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger('info', logs),
    coalesceMs: 10,
    // Tests that watch a device go offline need it at once; resume-and-grace tests set their own.
    offlineGraceMs: 0,
    // The API alone, whether or not the dashboard is built here (tests that serve it give one).
    dashboardDir: null,
    ...overrides,
  });
  const api = httpClient(broker.url, broker.certFile);
  const login = async (email: string, password: string) => {
    const res = await api('POST', API_PATHS.login, { body: { email, password } });
    if (res.status !== 200) throw new Error(`login failed: ${res.text}`);
    return res.json.token as string;
  };
  const boot = broker.bootstrap!;
  const ownerToken = boot ? await login(boot.ownerEmail, boot.ownerPassword) : '';
  const t: TestBroker = {
    broker,
    api,
    ownerToken,
    setupKey: boot?.setupKey ?? '',
    device: () => new TestDevice(broker.url, broker.certFile),
    addAccount: async (name) => {
      const created = await broker.services.accounts.create(name, `owner@${name}.test`, 'pw-owner-1234');
      const key = await broker.services.setupKeys.create(created.account.id, { name: 'k', reusable: true });
      return {
        token: await login(`owner@${name}.test`, 'pw-owner-1234'),
        setupKey: key.key,
        accountId: created.account.id,
      };
    },
    addMember: async (email) => {
      const account = await broker.services.accounts.byName('default');
      await broker.services.users.create(account.id, email, 'member', 'member-pass-1');
      return login(email, 'member-pass-1');
    },
    close: () => broker.close(),
  };
  return Object.assign(t, { logs });
}
