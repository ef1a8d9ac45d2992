import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Name of the i-th filled device; they sort in the order they were made. */
export const deviceName = (i: number) => `dev-${String(i).padStart(5, '0')}`;

/**
 * `count` devices in account `default`, written straight into the database (enrolling thousands
 * through the API would take minutes and is what the netmap bench measures). Every third is marked
 * online, as a list of a real fleet would show.
 */
export async function fillDevices(databaseUrl: string, count: number): Promise<void> {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string }>("select id from accounts where name = 'default'");
    const account = rows[0]?.id;
    if (!account) throw new Error('account default is missing');
    for (let from = 1; from <= count; from += 1000) {
      const values: string[] = [];
      const params: unknown[] = [];
      for (let i = from; i < Math.min(count + 1, from + 1000); i += 1) {
        const p = params.length;
        values.push(`($${p + 1}, $${p + 2}, $${p + 3}, 'linux', $${p + 4}, $${p + 5}, $${p + 6}, $${p + 7})`);
        const address = `100.${64 + Math.floor(i / 65_000)}.${Math.floor(i / 250) % 256}.${(i % 250) + 1}`;
        params.push(account, deviceName(i), `host-${i}`, randomBytes(32).toString('base64'), address);
        params.push(i % 3 === 0 ? `bench-${i}` : null, JSON.stringify(i % 10 === 0 ? ['tag:server'] : []));
      }
      await db.query(
        `insert into devices (account_id, name, hostname, os, public_key, address, connection_id, tags)
         values ${values.join(',')}`,
        params,
      );
    }
  } finally {
    await db.end();
  }
}
