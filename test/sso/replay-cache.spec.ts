import { ManualClock } from '@idlc/domain';
import { SqlReplayCache } from '@idlc/engine';
import { PostgresDatabase, SqlDatabase, SqliteDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { serviceEnv } from '../support/services';
import { tempDirPerTest } from '../support/temp-dir';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const T0 = Date.parse('2026-12-07T12:00:30.000Z');
const ISSUER = 'https://idp.example.com';

/** Each call is another process on the same database: its own connection (SQLite) or pool (PostgreSQL). */
type Backend = [string, () => { setup(): Promise<void>; open(): SqlDatabase; cleanup(): Promise<void> }];
const backends: Backend[] = [
  [
    'sqlite',
    () => {
      const file = join(dir(), 'idlc.db');
      return { setup: async () => undefined, open: () => track(new SqliteDatabase({ filename: file })), cleanup: async () => undefined };
    },
  ],
];
if (pgUrl) {
  backends.push([
    'postgres',
    () => {
      const schema = `rc_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      const admin = new PostgresDatabase({ connectionString: pgUrl });
      return {
        setup: () => admin.exec(`CREATE SCHEMA ${schema}`),
        open: () => track(new PostgresDatabase({ connectionString: pgUrl, schema })),
        cleanup: async () => {
          await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await admin.close();
        },
      };
    },
  ]);
}
const dir = tempDirPerTest('idlc-replay-');
const opened: SqlDatabase[] = [];
const track = <T extends SqlDatabase>(db: T): T => (opened.push(db), db);

describe.each(backends)('the SSO replay cache in the database (%s)', (_name, backend) => {
  let env: ReturnType<Backend[1]>;
  const clock = new ManualClock(T0);
  beforeEach(async () => {
    clock.set(T0);
    env = backend();
    await env.setup();
  });
  afterEach(async () => {
    for (const db of opened.splice(0)) await db.close();
    await env.cleanup();
  });
  const count = async (db: SqlDatabase) => Number((await db.get<{ n: number }>('SELECT count(*) AS n FROM sso_spent_credentials'))!.n);

  it('spends a credential once, across processes; a purge removes whole expired minutes and keeps the rest', async () => {
    const one = await SqlReplayCache.open(env.open(), clock);
    const otherDb = env.open();
    const other = await SqlReplayCache.open(otherDb, clock);
    const exp = new Date(T0 + 5 * 60_000);
    // Concurrent claims of one credential, in one process and across two: exactly one wins.
    const firsts = await Promise.all([one.claim(ISSUER, 'jti-1', exp), one.claim(ISSUER, 'jti-1', exp), other.claim(ISSUER, 'jti-1', exp)]);
    expect(firsts.filter(Boolean)).toHaveLength(1);
    // The same id at another issuer is another credential.
    expect(await other.claim('https://other.example.com', 'jti-1', exp)).toBe(true);
    // Rows expiring in three different minutes.
    expect(await one.claim(ISSUER, 'jti-2', new Date(T0 + 60_000))).toBe(true);
    expect(await one.claim(ISSUER, 'jti-3', new Date(T0 + 2 * 60_000 + 10_000))).toBe(true);
    expect(await count(otherDb)).toBe(4);

    // 10 s past jti-2's expiry: its minute has ended, so it goes; jti-3's minute has not.
    clock.set(T0 + 2 * 60_000);
    expect(await one.purge()).toBe(1);
    expect(await one.claim(ISSUER, 'jti-3', new Date(T0 + 2 * 60_000 + 10_000))).toBe(false);
    clock.set(T0 + 3 * 60_000);
    expect(await other.purge()).toBe(1);
    // Unexpired credentials stay spent.
    expect(await one.claim(ISSUER, 'jti-1', exp)).toBe(false);
    expect(await count(otherDb)).toBe(2);
  });

  it('moves the live rows of the earlier table (keyed on issuer and id) over once, so a credential spent before the upgrade stays spent', async () => {
    const db = env.open();
    await db.exec(`CREATE TABLE sso_replay (issuer TEXT NOT NULL, credential_id TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (issuer, credential_id));
CREATE INDEX sso_replay_expires ON sso_replay (expires_at)`);
    const live = T0 + 4 * 60_000 + 123;
    await db.run('INSERT INTO sso_replay (issuer, credential_id, expires_at) VALUES (?, ?, ?), (?, ?, ?)', [ISSUER, 'spent-before', live, ISSUER, 'long-gone', T0 - 1]);
    // Two processes upgrading at once: one moves the rows, the other finds nothing left to move. (On
    // SQLite one after the other: two connections in one thread would wait on each other's write lock
    // with the event loop blocked; across processes the lock takes turns.)
    const second = env.open();
    const [a, b] =
      db.dialect === 'postgres'
        ? await Promise.all([SqlReplayCache.open(db, clock), SqlReplayCache.open(second, clock)])
        : [await SqlReplayCache.open(db, clock), await SqlReplayCache.open(second, clock)];
    expect(await a.claim(ISSUER, 'spent-before', new Date(live))).toBe(false);
    expect(await b.claim(ISSUER, 'spent-before', new Date(live))).toBe(false);
    expect(await count(db)).toBe(1);
    const legacy =
      db.dialect === 'postgres'
        ? (await db.get<{ t: string | null }>(`SELECT to_regclass('sso_replay')::text AS t`))?.t
        : (await db.get<{ t: string }>(`SELECT name AS t FROM sqlite_master WHERE name = 'sso_replay'`))?.t;
    expect(legacy ?? null).toBeNull();
  });
});
