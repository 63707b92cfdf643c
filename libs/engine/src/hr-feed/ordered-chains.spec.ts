import { orderedChains } from './hr-feed.service';

describe('orderedChains: which events of an HR batch must run in sequence', () => {
  const ev = (eventId: string, employeeId: string) => ({ eventId, employeeId });

  it("keeps one employee's events in batch order and lets other employees' run beside them", () => {
    expect(orderedChains([ev('1', 'A'), ev('2', 'B'), ev('3', 'A'), ev('4', 'C'), ev('5', 'A')])).toEqual([[0, 2, 4], [1], [3]]);
  });

  it('puts events repeating an event id in one chain, even across employees, so the first one applies', () => {
    expect(orderedChains([ev('x', 'A'), ev('y', 'B'), ev('x', 'C'), ev('z', 'C')])).toEqual([[0, 2, 3], [1]]);
  });

  it('joins chains that an event links after the fact, keeping batch order inside the joined chain', () => {
    // 2 links B to A's chain through the event id; 3 is B's and so joins too.
    expect(orderedChains([ev('1', 'A'), ev('2', 'B'), ev('1', 'B'), ev('4', 'B'), ev('5', 'D')])).toEqual([[0, 1, 2, 3], [4]]);
  });

  it('an empty batch has no chains', () => {
    expect(orderedChains([])).toEqual([]);
  });
});
