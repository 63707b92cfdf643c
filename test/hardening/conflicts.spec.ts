import { WrongExpectedVersionError } from '@idlc/event-store';
import { startTestApp, TestApp } from '../support/app';

/**
 * A hot identity: every append loses the optimistic-concurrency race. The write path retries a
 * bounded number of times, then the caller gets 409 problem+json and nothing is stored.
 */
describe('bounded retries of concurrency conflicts end in 409 problem+json', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('a manual grant that always conflicts is tried 5 times, then refused with 409', async () => {
    const hire = await t.hr({
      eventId: 'c-1',
      type: 'hire',
      employeeId: 'HOT1',
      effectiveDate: '2026-01-05',
      attributes: { givenName: 'Ada', familyName: 'L', email: 'hot1@example.com', department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' },
    });
    const id = hire.body.results[0].identityId;
    await t.settle();
    const count = await t.eventCount();

    // The store as a racing writer would make it look: someone else always appended first.
    const store = t.engine.store;
    const real = store.append;
    let attempts = 0;
    store.append = async (streamId, _events, expected) => {
      attempts++;
      throw new WrongExpectedVersionError(streamId, expected, (typeof expected === 'number' ? expected : -1) + attempts);
    };
    try {
      const r = await t.post(`/identities/${id}/roles`, { role: 'prod-db-readonly' });
      expect(r.status).toBe(409);
      expect(r.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(r.body).toMatchObject({
        type: 'https://idlc.dev/problems/concurrency_conflict',
        title: 'Concurrent modification',
        status: 409,
        detail: `identity ${id} kept changing concurrently; gave up after 5 attempts`,
        instance: `/identities/${id}/roles`,
      });
      expect(attempts).toBe(5);
    } finally {
      store.append = real;
    }
    expect(await t.eventCount()).toBe(count);
    // Once the race is over the same request succeeds: the cache was not left holding a stale state.
    const again = await t.post(`/identities/${id}/roles`, { role: 'prod-db-readonly' });
    expect(again.status).toBe(200);
    expect(await t.eventCount()).toBe(count + 1);
  });
});
