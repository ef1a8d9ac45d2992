import { DrizzleQueryError } from 'drizzle-orm';
import { createLogger } from '../../src/logger';

describe('the broker log', () => {
  it('never writes a secret, at the top of a line or one level down, nor credentials in request headers', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    const secrets = {
      password: 'hunter2-password',
      token: 'tsess_secret',
      setupKey: 'tskey_secret',
      deviceCode: 'tdev_secret',
      userCode: 'BCDF-GHJK',
      privateKey: 'private-key-secret',
      ownerPassword: 'owner-secret',
      csrfToken: 'csrf-secret',
    };
    log.info(secrets, 'top level');
    log.info({ body: secrets }, 'one level down');
    log.info(
      { req: { headers: { authorization: 'Bearer tsess_secret', cookie: 'trellis_session=tsess_secret' } } },
      'headers',
    );
    const text = lines.join('');
    for (const secret of Object.values(secrets)) expect(text).not.toContain(secret);
    expect(text).not.toContain('trellis_session=');
    expect(text).toContain('[redacted]');
    // What is no secret stays: the message and other fields.
    log.info({ response: { setupKey: { key: 'tskey_deep' }, generatedPassword: 'gen-secret' } }, 'deeper');
    expect(lines.at(-1)).not.toContain('tskey_deep');
    expect(lines.at(-1)).not.toContain('gen-secret');
    log.info({ publicKey: 'pub-key', email: 'a@b.test' }, 'kept');
    expect(lines.at(-1)).toContain('pub-key');
  });
});

describe('failed queries in the log', () => {
  it('keep the query and lose the bound parameters, whether logged as a message, a field or a stack', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    const err = new DrizzleQueryError(
      'insert into "users" ("email", "password_hash") values ($1, $2)',
      ['alice@example.test', 'scrypt$secret-hash'],
      new Error('duplicate key'),
    );
    log.error(err.message);
    log.error({ err: err.message }, 'write failed');
    log.error({ err: err.stack }, 'internal error');
    log.error({ nested: { err: err.message } }, 'deeper');
    log.error({ err }, 'as an Error');
    const text = lines.join('');
    expect(text).not.toContain('secret-hash');
    expect(text).not.toContain('alice@example.test');
    expect(text).toContain('insert into \\"users\\"');
    expect(text).toContain('params: [redacted]');
    expect(JSON.parse(lines[4]!).err.message).toMatch(/^Failed query: .*\nparams: \[redacted\]$/s);
    // The stack's frames stay (where it failed is no secret).
    expect(JSON.parse(lines[2]!).err).toMatch(/params: \[redacted\]\n {4}at /);
  });
});
