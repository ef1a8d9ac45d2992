import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../src/agent/agent';
import type { LocalUiServer } from '../src/ui/ui-server';
import { LocalUiClient, LocalUiError } from '../tray/src/local-ui-client';
import { startUi } from './helpers/local-ui';
import { newTestAgent } from './helpers/test-agent';

jest.setTimeout(30_000);

describe("the tray's client of the local UI (the Electron main process's only way to the daemon)", () => {
  let dir: string;
  let agent: Agent;
  let ui: LocalUiServer;
  let tokenFile: string;
  const logs: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trl-tray-'));
    ({ agent } = newTestAgent(dir, logs, { interfaceName: 'trltray0' }));
    await agent.start();
    ({ ui, tokenFile } = await startUi(agent, logs));
  });
  afterEach(async () => {
    await ui.close();
    await agent.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a session with the token file, reads the status, and answers errors as errors', async () => {
    const client = new LocalUiClient(tokenFile);
    expect((await client.status()).state).toBe('needs-enrollment');
    expect((await client.pageUrl()).startsWith(`${ui.url}#token=`)).toBe(true);
    const refused = client.up({});
    await expect(refused).rejects.toBeInstanceOf(LocalUiError);
    await expect(refused).rejects.toThrow(/not enrolled/);
    expect((await client.down()).message).toMatch(/^down/);
  });

  it('after trellisd restarts (a new token) it opens a new session by itself', async () => {
    const client = new LocalUiClient(tokenFile);
    await client.status();
    const port = Number(new URL(ui.url).port);
    await ui.close();
    ({ ui } = await startUi(agent, logs, { tokenFile, port }));
    expect((await client.status()).state).toBe('needs-enrollment');
  });

  it('says what is wrong when the token file is missing', async () => {
    const client = new LocalUiClient(join(dir, 'nothing-here'));
    await expect(client.status()).rejects.toThrow(/is missing: is trellisd running with --ui-listen/);
  });
});
