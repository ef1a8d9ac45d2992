// A real OpenID Connect provider (the `oidc-provider` package, ESM-only, hence this child process)
// for the broker's OIDC sign-in tests. Plain HTTP on loopback; its built-in development login page
// takes any password, and the login name picks one of the accounts given in OIDC_TEST_ACCOUNTS.
// Clients are registered over IPC once the broker (and so its redirect URI) is known.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

/** login name → { email, email_verified } */
const accounts = JSON.parse(process.env.OIDC_TEST_ACCOUNTS ?? '{}');
const clients = new Map();

/** The provider's own in-memory storage, except that clients are the ones registered over IPC. */
class TestAdapter extends MemoryAdapter {
  async find(id) {
    if (this.model === 'Client') return clients.get(id);
    return super.find(id);
  }
}

const server = createServer();
await new Promise((done) => server.listen(Number(process.env.OIDC_TEST_PORT ?? 0), '127.0.0.1', done));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  adapter: TestAdapter,
  async findAccount(_ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, email: account.email, email_verified: account.email_verified }),
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  cookies: { keys: ['oidc-test-provider-cookie-key'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // The broker is a first-party client: no consent page, the grant is given at login.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc provider error: ${err.stack}\n`));
server.on('request', provider.callback());

process.on('message', (msg) => {
  if (msg?.type === 'client') {
    clients.set(msg.client.client_id, {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...msg.client,
    });
    process.send({ type: 'client-registered', clientId: msg.client.client_id });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', issuer });
