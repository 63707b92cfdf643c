import { ManualClock } from '@idlc/domain';
import {
  AppendResult,
  EventStore,
  EventToAppend,
  KeyAlreadyClaimedError,
  SnapshotStore,
  StoredEvent,
  WrongExpectedVersionError,
} from '@idlc/event-store';
import { randomUUID } from 'node:crypto';

export interface ContractFixture {
  store: EventStore & Partial<SnapshotStore>;
  clock: ManualClock;
  cleanup(): Promise<void>;
}

const ev = (type: string, data: Record<string, unknown> = {}, extra: Partial<EventToAppend> = {}): EventToAppend => ({
  type,
  version: 1,
  data,
  metadata: { correlationId: 'c-1', causationId: 'cause-1', source: 'test', actor: 'contract' },
  ...extra,
});

/** One suite, every adapter: the same cases must hold for SQLite, PostgreSQL and EventStoreDB. */
export function eventStoreContract(name: string, open: () => Promise<ContractFixture>): void {
  describe(`event store contract: ${name}`, () => {
    let f: ContractFixture;
    let store: EventStore & Partial<SnapshotStore>;
    // Stream ids unique per test so EventStoreDB (which cannot be wiped) runs the suite repeatedly.
    let s: (n: string) => string;

    beforeEach(async () => {
      f = await open();
      store = f.store;
      const run = randomUUID().slice(0, 8);
      s = (n) => `identity-${run}-${n}`;
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('appends to a new stream and reads it back in order with metadata', async () => {
      f.clock.set('2026-03-01T10:00:00.000Z');
      const r = await store.append(s('a'), [ev('A', { n: 1 }), ev('B', { n: 2 }), ev('C', { n: 3 })], 'no_stream');
      expect(r.nextExpectedRevision).toBe(2);
      expect(r.positions).toHaveLength(3);
      expect(r.duplicate).toBe(false);
      expect(r.positions[0]).toBeLessThan(r.positions[1]);
      const read = await store.readStream(s('a'));
      expect(read.map((e) => [e.type, e.revision, e.data.n])).toEqual([
        ['A', 0, 1],
        ['B', 1, 2],
        ['C', 2, 3],
      ]);
      expect(read.map((e) => e.position)).toEqual(r.positions);
      expect(read[0].metadata).toMatchObject({ correlationId: 'c-1', causationId: 'cause-1', source: 'test', actor: 'contract' });
      expect(read[0].version).toBe(1);
      expect(read[0].streamId).toBe(s('a'));
      // UUIDv7, made in order: ids sort as they were appended (index locality, see libs/event-store/src/ids.ts).
      expect(read.map((e) => e.id).every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
      expect(read.map((e) => e.id.slice(0, 13))).toEqual(read.map((e) => e.id.slice(0, 13)).sort());
      expect(read[0].recordedAt.toISOString()).toBe('2026-03-01T10:00:00.000Z');
      expect(await store.streamRevision(s('a'))).toBe(2);
      expect(await store.streamRevision(s('none'))).toBe(-1);
      expect(await store.readStream(s('none'))).toEqual([]);
      expect((await store.readStream(s('a'), { fromRevision: 1 })).map((e) => e.type)).toEqual(['B', 'C']);
    });

    it('enforces expected revisions and writes nothing on a conflict', async () => {
      await store.append(s('a'), [ev('A')], 'no_stream');
      await expect(store.append(s('a'), [ev('X')], 'no_stream')).rejects.toBeInstanceOf(WrongExpectedVersionError);
      await expect(store.append(s('a'), [ev('X')], 5)).rejects.toMatchObject({ streamId: s('a'), expected: 5, actual: 0 });
      await expect(store.append(s('b'), [ev('X')], 'stream_exists')).rejects.toBeInstanceOf(WrongExpectedVersionError);
      await expect(store.append(s('b'), [ev('X')], 0)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect((await store.readStream(s('a'))).map((e) => e.type)).toEqual(['A']);
      expect(await store.readStream(s('b'))).toEqual([]);
      await store.append(s('a'), [ev('B')], 0);
      await store.append(s('a'), [ev('C')], 'stream_exists');
      await store.append(s('a'), [ev('D')], 'any');
      await store.append(s('c'), [ev('E')], 'any');
      expect((await store.readStream(s('a'))).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
    });

    it('lets exactly one of many racing writers win', async () => {
      await store.append(s('hot'), [ev('Created')], 'no_stream');
      const writers = Array.from({ length: 16 }, (_, i) =>
        store.append(s('hot'), [ev('Raced', { writer: i })], 0).then(
          () => 'won',
          (e) => (e instanceof WrongExpectedVersionError ? 'lost' : Promise.reject(e)),
        ),
      );
      const outcomes = await Promise.all(writers);
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'lost')).toHaveLength(15);
      expect(await store.readStream(s('hot'))).toHaveLength(2);
    });

    it('lets exactly one of many racing creators of a new stream win', async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.append(s('new'), [ev('Created', { writer: i })], 'no_stream').then(
            () => 'won',
            (e) => (e instanceof WrongExpectedVersionError ? 'lost' : Promise.reject(e)),
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
      expect(await store.readStream(s('new'))).toHaveLength(1);
    });

    it('appends several events atomically: a failing batch writes none of them', async () => {
      const id = randomUUID();
      await store.append(s('a'), [ev('First', {}, { id })], 'no_stream');
      const before = await store.headPosition();
      // The third event reuses an existing event id: the whole append must fail.
      // Asserted on the message rather than with rejects.toThrow(): a native addon's error class can come
      // from another test file's context (jest loads addons once per process), which toThrow() rejects.
      const err = await store.append(s('b'), [ev('One'), ev('Two'), ev('Dup', {}, { id })], 'no_stream').then(
        () => null,
        (e: unknown) => e as { message?: unknown },
      );
      expect(err).not.toBeNull();
      expect(typeof err?.message === 'string' && err.message.length > 0).toBe(true);
      expect(await store.readStream(s('b'))).toEqual([]);
      expect(await store.headPosition()).toBe(before);
      await store.append(s('b'), [ev('One'), ev('Two')], 'no_stream');
      expect((await store.readStream(s('b'))).map((e) => e.type)).toEqual(['One', 'Two']);
      // The reused id as a new stream's first event: refused, and not mistaken for an existing stream.
      const first = await store.append(s('c'), [ev('Dup', {}, { id })], 'no_stream').then(
        () => null,
        (e: unknown) => e,
      );
      expect(first).not.toBeNull();
      expect(first).not.toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.readStream(s('c'))).toEqual([]);
    });

    it('reports an existing stream appended to as new before a key it would claim is found taken', async () => {
      await store.append(s('owner'), [ev('Hired')], 'no_stream', { claims: [s('key')] });
      await store.append(s('existing'), [ev('Hired')], 'no_stream');
      const before = await store.headPosition();
      const err = await store.append(s('existing'), [ev('Again')], 'no_stream', { claims: [s('key')] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WrongExpectedVersionError);
      expect(err).toMatchObject({ actual: 0 });
      expect(await store.headPosition()).toBe(before);
      expect(await store.lookupKey(s('key'))).toBe(s('owner'));
    });

    it('reads all events in global order from an exclusive position', async () => {
      const start = await store.headPosition();
      await store.append(s('x'), [ev('X1')], 'no_stream');
      await store.append(s('y'), [ev('Y1'), ev('Y2')], 'no_stream');
      await store.append(s('x'), [ev('X2')], 0);
      const mine = (es: StoredEvent[]) => es.filter((e) => e.streamId === s('x') || e.streamId === s('y'));
      const all = mine(await store.readAll({ fromPosition: start, maxCount: 10_000 }));
      expect(all.map((e) => e.type)).toEqual(['X1', 'Y1', 'Y2', 'X2']);
      for (let i = 1; i < all.length; i++) expect(all[i].position).toBeGreaterThan(all[i - 1].position);
      const after = mine(await store.readAll({ fromPosition: all[1].position, maxCount: 10_000 }));
      expect(after.map((e) => e.type)).toEqual(['Y2', 'X2']);
      expect((await store.readAll({ fromPosition: start, maxCount: 2 })).length).toBe(2);
      expect(await store.headPosition()).toBe(all[3].position);
      const prefixed = await store.readAll({ fromPosition: start, streamPrefix: s('y') });
      expect(prefixed.map((e) => e.type)).toEqual(['Y1', 'Y2']);
    });

    it('subscribes: catches up, then goes live, with no gap and no duplicate', async () => {
      const start = await store.headPosition();
      for (let i = 0; i < 50; i++) await store.append(s(`sub-${i % 5}`), [ev('Early', { i })], 'any');
      const seen: StoredEvent[] = [];
      const sub = store.subscribeToAll(
        async (batch) => {
          seen.push(...batch);
        },
        { fromPosition: start, batchSize: 7 },
      );
      await sub.caughtUp();
      expect(seen.filter((e) => e.type === 'Early')).toHaveLength(50);
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.append(s(`live-${i % 10}`), [ev('Live', { i })], 'any')));
      await sub.caughtUp();
      await sub.stop();
      const mine = seen.filter((e) => e.streamId.startsWith(s('')));
      expect(mine).toHaveLength(100);
      expect(new Set(mine.map((e) => e.id)).size).toBe(100);
      for (let i = 1; i < seen.length; i++) expect(seen[i].position).toBeGreaterThan(seen[i - 1].position);
      expect(sub.position).toBe(seen[seen.length - 1].position);
    });

    it('resumes from a checkpoint and retries a failing batch without skipping it', async () => {
      const start = await store.headPosition();
      const r = await store.append(s('r'), [ev('A'), ev('B'), ev('C'), ev('D')], 'no_stream');
      const seen: string[] = [];
      let failures = 0;
      const sub = store.subscribeToAll(
        async (batch) => {
          const mine = batch.filter((e) => e.streamId === s('r'));
          if (mine.some((e) => e.type === 'C') && failures < 2) {
            failures++;
            throw new Error('transient');
          }
          seen.push(...mine.map((e) => e.type));
        },
        { fromPosition: r.positions[1], batchSize: 1 },
      );
      await sub.caughtUp();
      await sub.stop();
      expect(start).toBeLessThan(r.positions[0]);
      expect(failures).toBe(2);
      expect(seen).toEqual(['C', 'D']);
    });

    it('stores 10,000 events and reads every one back intact', async () => {
      const start = await store.headPosition();
      for (let b = 0; b < 100; b++) {
        await store.append(
          s(`bulk-${b}`),
          Array.from({ length: 100 }, (_, i) => ev('Bulk', { b, i, text: `payload ${b}-${i}` })),
          'no_stream',
        );
      }
      const got: StoredEvent[] = [];
      let from = start;
      for (;;) {
        const page = await store.readAll({ fromPosition: from, maxCount: 1000, streamPrefix: s('bulk-') });
        if (page.length === 0) break;
        got.push(...page);
        from = page[page.length - 1].position;
      }
      expect(got).toHaveLength(10_000);
      const keys = new Set(got.map((e) => `${e.data.b}-${e.data.i}`));
      expect(keys.size).toBe(10_000);
      expect(got.every((e) => e.data.text === `payload ${e.data.b}-${e.data.i}` && e.revision === e.data.i)).toBe(true);
    }, 120_000);

    it('round-trips large payloads and unicode exactly', async () => {
      const big = 'x'.repeat(1024 * 1024);
      const unicode = {
        name: 'Zoë Ångström-Łukasiewicz',
        rtl: 'مرحبا بالعالم',
        cjk: '山田太郎',
        emoji: '👩🏽‍💻🚀',
        combining: 'e\u0301',
        quotes: `it's "quoted" \\ back\\slash`,
        nested: { list: [1, 2.5, -3, true, null, { deep: 'ok' }] },
      };
      await store.append(s('u'), [ev('Big', { big }), ev('Unicode', unicode)], 'no_stream');
      const [a, b] = await store.readStream(s('u'));
      expect(a.data.big.length).toBe(big.length);
      expect(b.data).toEqual(unicode);
    });

    it('makes appends idempotent by key, also for appends without events', async () => {
      const first = await store.append(s('i'), [ev('Hired')], 'any', { idempotencyKey: `hr:${s('evt-1')}` });
      const again = await store.append(s('i'), [ev('Hired')], 'any', { idempotencyKey: `hr:${s('evt-1')}` });
      expect(again.duplicate).toBe(true);
      expect(again.positions).toEqual(first.positions);
      expect(again.streamId).toBe(s('i'));
      expect(await store.readStream(s('i'))).toHaveLength(1);
      const noop = await store.append(s('i'), [], 'any', { idempotencyKey: `hr:${s('evt-2')}` });
      expect(noop.duplicate).toBe(false);
      expect((await store.append(s('i'), [ev('Changed')], 'any', { idempotencyKey: `hr:${s('evt-2')}` })).duplicate).toBe(true);
      expect(await store.readStream(s('i'))).toHaveLength(1);
      expect((await store.lookupIdempotencyKey(`hr:${s('evt-1')}`))?.positions).toEqual(first.positions);
      expect(await store.lookupIdempotencyKey(`hr:${s('never')}`)).toBeNull();
      // A rejected append must not burn its key.
      await expect(store.append(s('i'), [ev('X')], 'no_stream', { idempotencyKey: `hr:${s('evt-3')}` })).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
      expect(await store.lookupIdempotencyKey(`hr:${s('evt-3')}`)).toBeNull();
    });

    it('takes stream ids and keys with quotes, backslashes and unicode as they are', async () => {
      const odd = s(`o'quote\\back"slash ünï 😀 $1 ?`);
      const key = `hr:${s(`k'ey\\ ';--`)}`;
      await store.append(odd, [ev('Hired')], 'no_stream');
      const first = await store.append(odd, [ev('A'), ev('B'), ev('C')], 0, { idempotencyKey: key });
      expect(first.nextExpectedRevision).toBe(3);
      const again = await store.append(odd, [ev('A'), ev('B'), ev('C')], 0, { idempotencyKey: key });
      expect([again.duplicate, again.streamId, again.nextExpectedRevision, again.positions]).toEqual([true, odd, 3, first.positions]);
      expect((await store.readStream(odd)).map((e) => [e.type, e.revision, e.position])).toEqual([
        ['Hired', 0, expect.any(Number)],
        ...first.positions.map((p, i) => [['A', 'B', 'C'][i], i + 1, p]),
      ]);
      expect(await store.lookupIdempotencyKey(key)).toMatchObject({ streamId: odd, nextExpectedRevision: 3, positions: first.positions });
      await expect(store.append(odd, [ev('D')], 0)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.streamRevision(odd)).toBe(3);
    });

    it('appends to several streams at once, each request settled on its own as append would', async () => {
      const held = `hr-employee:${s('held')}`;
      const taken = `hr-employee:${s('taken')}`;
      const freed = `hr-employee:${s('freed')}`;
      const start = await store.headPosition();
      await store.append(s('m-old'), [ev('Hired')], 'no_stream', { idempotencyKey: `k:${s('old')}` });
      await store.append(s('m-owner'), [ev('Hired')], 'no_stream', { claims: [taken] });
      await store.append(s('m-claimer'), [ev('Hired')], 'no_stream', { claims: [held] });
      await store.append(s('m-releaser'), [ev('Hired')], 'no_stream', { claims: [freed] });
      const seen = await store.lookupIdempotencyKey(`k:${s('old')}`);
      const odd = s(`m-o'dd\ "ü"`);
      const requests = [
        { streamId: s('m-new'), events: [ev('A'), ev('B')], expected: 'no_stream' as const, options: { idempotencyKey: `k:${s('new')}` } },
        { streamId: s('m-old'), events: [ev('Again')], expected: 'no_stream' as const, options: { idempotencyKey: `k:${s('old')}` } },
        { streamId: s('m-owner'), events: [ev('Changed')], expected: 5 },
        // Takes a key another stream owns: refused, and the key it releases on the way stays its own.
        { streamId: s('m-claimer'), events: [ev('Linked')], expected: 0, options: { claims: [taken], releases: [held] } },
        { streamId: s('m-releaser'), events: [ev('Released')], expected: 0, options: { releases: [freed] } },
        { streamId: odd, events: [], expected: 'any' as const, options: { idempotencyKey: `k:${s(`o'dd`)}` } },
        { streamId: s('m-bad'), events: [{ type: '', version: 1, data: {} }], expected: 'any' as const },
      ];
      const results = await store.appendMany(requests);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'rejected']);
      const value = (i: number) => (results[i] as PromiseFulfilledResult<AppendResult>).value;
      const reason = (i: number) => (results[i] as PromiseRejectedResult).reason;
      expect(value(0)).toMatchObject({ streamId: s('m-new'), nextExpectedRevision: 1, duplicate: false });
      expect((await store.readStream(s('m-new'))).map((e) => [e.type, e.revision, e.position])).toEqual([
        ['A', 0, value(0).positions[0]],
        ['B', 1, value(0).positions[1]],
      ]);
      expect(value(1)).toMatchObject({ duplicate: true, positions: seen!.positions });
      expect(reason(2)).toBeInstanceOf(WrongExpectedVersionError);
      expect(reason(3)).toBeInstanceOf(KeyAlreadyClaimedError);
      expect(await store.lookupKey(held)).toBe(s('m-claimer'));
      expect(await store.lookupKey(taken)).toBe(s('m-owner'));
      expect(value(4).positions).toHaveLength(1);
      expect(await store.lookupKey(freed)).toBeNull();
      expect(value(5)).toMatchObject({ streamId: odd, nextExpectedRevision: -1, positions: [], duplicate: false });
      expect(reason(6)).toBeInstanceOf(TypeError);
      for (const id of ['m-old', 'm-owner', 'm-claimer']) expect((await store.readStream(s(id))).map((e) => e.type)).toEqual(['Hired']);
      expect(await store.readStream(s('m-bad'))).toEqual([]);
      expect(await store.lookupIdempotencyKey(`k:${s('new')}`)).toMatchObject({ streamId: s('m-new'), nextExpectedRevision: 1, positions: value(0).positions });
      expect(await store.lookupIdempotencyKey(`k:${s(`o'dd`)}`)).toMatchObject({ streamId: odd, positions: [] });
      // Sent again (a retried batch): keyed requests answer as duplicates, the others by their revision.
      const again = await store.appendMany(requests.slice(0, 2));
      expect(again.map((r) => r.status === 'fulfilled' && [r.value.duplicate, r.value.positions])).toEqual([
        [true, value(0).positions],
        [true, seen!.positions],
      ]);
      expect((await store.readAll({ fromPosition: start, streamPrefix: s('m-') })).map((e) => e.type)).toEqual([
        'Hired', 'Hired', 'Hired', 'Hired', 'A', 'B', 'Released',
      ]);
      await expect(store.appendMany([requests[0], { ...requests[2], streamId: s('m-new') }])).rejects.toBeInstanceOf(TypeError);
      expect(await store.appendMany([])).toEqual([]);
    });

    it('round-trips data and metadata through appendMany exactly as append does', async () => {
      // Values a driver's escaping or a JSON type could change: quotes and backslashes, an escaped
      // NUL and a lone surrogate (JSON.stringify writes both as \u escapes), characters outside the
      // BMP, key order (jsonb would sort it), numbers as written, empty and nested containers.
      const odd = {
        zebra: `it's "quoted" \\ back\\slash \\u0041 ''`,
        apple: 'nul\u0000inside, lone \ud800 surrogate, 👩🏽‍💻 e\u0301 山田',
        numbers: [0, -1.5, 1e21, 123456789012345],
        empty: { list: [], obj: {}, str: '' },
        nested: { b: { d: null, c: true }, a: [{ y: 1, x: 2 }] },
      };
      const metadata = { correlationId: `c'1"\\`, source: 'test', actor: 'ünï\ud83d', note: '\n\t\r' };
      const results = await store.appendMany([
        { streamId: s('rt-a'), events: [ev('Odd', odd, { metadata }), ev('Plain', { i: 1 })], expected: 'no_stream' },
        { streamId: s('rt-b'), events: [ev('Odd', { ...odd, more: 'x'.repeat(100_000) }, { metadata })], expected: 'no_stream' },
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
      const [a0, a1] = await store.readStream(s('rt-a'));
      const [b0] = await store.readStream(s('rt-b'));
      for (const e of [a0, b0]) {
        expect(e.metadata).toEqual(metadata);
        expect(Object.keys(e.data).slice(0, 5)).toEqual(['zebra', 'apple', 'numbers', 'empty', 'nested']);
        expect(Object.keys(e.data.nested.b)).toEqual(['d', 'c']);
      }
      expect(a0.data).toEqual(odd);
      expect(a1.data).toEqual({ i: 1 });
      expect(b0.data).toEqual({ ...odd, more: 'x'.repeat(100_000) });
      // And through the global read the projections use.
      const all = await store.readAll({ fromPosition: a0.position - 1, streamPrefix: s('rt-') });
      expect(all.map((e) => e.data)).toEqual([a0.data, a1.data, b0.data]);
    });

    it('lets exactly one of racing batches write each stream they share, whatever their order', async () => {
      const ids = Array.from({ length: 20 }, (_, i) => s(`race-${i}`));
      for (const id of ids) await store.append(id, [ev('Hired')], 'no_stream');
      const batches = Array.from({ length: 4 }, (_, b) => {
        const order = b % 2 ? [...ids].reverse() : ids;
        return store.appendMany(order.map((streamId) => ({ streamId, events: [ev(`Batch${b}`)], expected: 0 })));
      });
      const results = (await Promise.all(batches)).flat();
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(ids.length);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WrongExpectedVersionError);
      for (const id of ids) expect(await store.streamRevision(id)).toBe(1);
    });

    it('keeps unique keys unique across streams, atomically with the append', async () => {
      const key = `hr-employee:${s('E1')}`;
      await store.append(s('p'), [ev('Hired')], 'no_stream', { claims: [key] });
      expect(await store.lookupKey(key)).toBe(s('p'));
      await expect(store.append(s('q'), [ev('Hired')], 'no_stream', { claims: [key] })).rejects.toBeInstanceOf(KeyAlreadyClaimedError);
      expect(await store.readStream(s('q'))).toEqual([]);
      await store.append(s('p'), [ev('Linked')], 0, { claims: [key] });
      await store.append(s('p'), [ev('Released')], 1, { releases: [key] });
      expect(await store.lookupKey(key)).toBeNull();
      await store.append(s('q'), [ev('Hired')], 'no_stream', { claims: [key] });
      expect(await store.lookupKey(key)).toBe(s('q'));
      const racing = `oidc:${s('sub-1')}`;
      const outcomes = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          store.append(s(`jit-${i}`), [ev('Provisioned')], 'no_stream', { claims: [racing] }).then(
            () => 'won',
            (e) => (e instanceof KeyAlreadyClaimedError ? 'lost' : Promise.reject(e)),
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
    });

    it('reads a stream as of a position or an instant', async () => {
      f.clock.set('2026-01-01T00:00:00.000Z');
      const r1 = await store.append(s('t'), [ev('A')], 'no_stream');
      f.clock.set('2026-02-01T00:00:00.000Z');
      await store.append(s('t'), [ev('B')], 0);
      expect((await store.readStream(s('t'), { toPosition: r1.positions[0] })).map((e) => e.type)).toEqual(['A']);
      expect((await store.readStream(s('t'), { toRecordedAt: new Date('2026-01-15T00:00:00Z') })).map((e) => e.type)).toEqual(['A']);
      expect((await store.readStream(s('t'), { maxCount: 1, fromRevision: 1 })).map((e) => e.type)).toEqual(['B']);
    });

    it('reads several streams at once, each from its own revision, the same events as one by one', async () => {
      f.clock.set('2026-03-01T10:00:00.000Z');
      await store.append(s('m1'), [ev('A', { n: 1 }), ev('B', { n: 2 }), ev('C', { n: 3 })], 'no_stream');
      await store.append(s('m2'), [ev('D', { n: 4 })], 'no_stream');
      await store.append(s('m1'), [ev('E', { n: 5 })], 2);
      await store.append(s('m3'), [ev('F'), ev('G')], 'no_stream');
      const from = new Map([
        [s('m1'), 1],
        [s('m2'), 0],
        [s('m3'), 2], // past its end
        [s('none'), 0],
      ]);
      const read = await store.readStreams(from);
      expect([...read.keys()].sort()).toEqual([...from.keys()].sort());
      expect(read.get(s('m1'))!.map((e) => e.type)).toEqual(['B', 'C', 'E']);
      expect(read.get(s('m1'))).toEqual(await store.readStream(s('m1'), { fromRevision: 1 }));
      expect(read.get(s('m2'))).toEqual(await store.readStream(s('m2')));
      expect(read.get(s('m3'))).toEqual([]);
      expect(read.get(s('none'))).toEqual([]);
      expect((await store.readStreams(new Map())).size).toBe(0);
    });

    it('loads the snapshots of several streams at once, leaving out those without one', async () => {
      if (!store.saveSnapshot || !store.loadSnapshots) return;
      await store.saveSnapshot({ streamId: s('sa'), revision: 3, schemaVersion: 1, state: { n: 3 } });
      await store.saveSnapshot({ streamId: s('sb'), revision: 7, schemaVersion: 2, state: { n: 7, tags: ['x'] } });
      const loaded = await store.loadSnapshots([s('sa'), s('sb'), s('sc')]);
      expect(loaded).toEqual(
        new Map([
          [s('sa'), { streamId: s('sa'), revision: 3, schemaVersion: 1, state: { n: 3 } }],
          [s('sb'), { streamId: s('sb'), revision: 7, schemaVersion: 2, state: { n: 7, tags: ['x'] } }],
        ]),
      );
      expect((await store.loadSnapshots([])).size).toBe(0);
    });

    it('saves and loads snapshots, never replacing a newer one with an older one', async () => {
      if (!store.saveSnapshot || !store.loadSnapshot) return;
      expect(await store.loadSnapshot(s('snap'))).toBeNull();
      await store.saveSnapshot({ streamId: s('snap'), revision: 10, schemaVersion: 1, state: { n: 10 } });
      await store.saveSnapshot({ streamId: s('snap'), revision: 5, schemaVersion: 1, state: { n: 5 } });
      expect(await store.loadSnapshot(s('snap'))).toEqual({ streamId: s('snap'), revision: 10, schemaVersion: 1, state: { n: 10 } });
    });
  });
}
