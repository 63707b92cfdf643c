import { alternate, combineRounds } from '../../bench/http-load';
import type { LoadRun } from '../../bench/lib';

const run = (requests: number, seconds: number, p50: number, p99: number, non2xx = 0): LoadRun => ({
  requestsPerSecond: Math.round(requests / seconds),
  p50,
  p99,
  errors: 0,
  non2xx,
  requests,
  seconds,
});

describe('bench: loads in alternating rounds', () => {
  it('turns the order each round, so no load always runs first', async () => {
    const order: string[] = [];
    const load = (name: string) => async (round: number) => {
      order.push(`${name}${round}`);
      return run(100, 1, 1, 2);
    };
    await alternate(3, { a: load('a'), b: load('b'), c: load('c') });
    expect(order).toEqual(['a0', 'b0', 'c0', 'b1', 'c1', 'a1', 'c2', 'a2', 'b2']);
  });

  it('sums rounds: all requests over all seconds, the median p50, the worst p99, every failure', async () => {
    const rounds = [run(1000, 1, 3, 9), run(1000, 4, 5, 30, 2), run(2000, 1, 4, 12)];
    const out = await alternate(3, { x: async (r) => rounds[r] });
    expect(out.x).toEqual({ requestsPerSecond: 667, p50: 4, p99: 30, errors: 0, non2xx: 2, requests: 4000, seconds: 6, roundRates: [1000, 250, 2000] });
    // Not the mean of the round rates (1,083): a slow round weighs by its duration, as one long run would.
    expect(combineRounds(rounds).requestsPerSecond).toBe(Math.round(4000 / 6));
  });
});
