import { decideGroupAll, evolveGroup, GroupEvent, initialGroupState } from '@idlc/domain';

const at = '2026-01-05T09:00:00.000Z';
const fold = (events: GroupEvent[], s = initialGroupState('g1')) => events.reduce((x, e) => evolveGroup(x, e, at), s);

describe('SCIM group aggregate (pure decide / evolve)', () => {
  it('creates, diffs a full member replacement into removals and additions, renames, deletes', () => {
    const created = decideGroupAll(initialGroupState('g1'), [{ kind: 'CreateGroup', displayName: 'Ops', members: [{ value: 'a', type: 'User' }, { value: 'a', type: 'User' }, { value: 'b', type: 'User' }] }], at);
    expect(created.events).toEqual([{ type: 'GroupCreated', version: 1, data: { displayName: 'Ops', externalId: undefined, members: [{ value: 'a', type: 'User' }, { value: 'b', type: 'User' }] } }]);
    const s1 = fold(created.events);
    const replaced = decideGroupAll(s1, [{ kind: 'ReplaceGroupMembers', members: [{ value: 'b', type: 'User' }, { value: 'c', type: 'Group' }] }, { kind: 'RenameGroup', displayName: 'SRE' }], at);
    expect(replaced.events.map((e) => [e.type, e.data])).toEqual([
      ['GroupMembersRemoved', { values: ['a'] }],
      ['GroupMembersAdded', { members: [{ value: 'c', type: 'Group' }] }],
      ['GroupRenamed', { from: 'Ops', to: 'SRE' }],
    ]);
    const s2 = fold(replaced.events, s1);
    expect(s2).toMatchObject({ revision: 3, displayName: 'SRE', members: [{ value: 'b', type: 'User' }, { value: 'c', type: 'Group' }] });
    expect(decideGroupAll(s2, [{ kind: 'AddGroupMembers', members: [{ value: 'b', type: 'User' }] }, { kind: 'RemoveGroupMembers', values: ['zz'] }], at).events).toEqual([]);
    const del = decideGroupAll(s2, [{ kind: 'DeleteGroup' }], at);
    expect(del.events.map((e) => e.type)).toEqual(['GroupMembersRemoved', 'GroupDeleted']);
    const s3 = fold(del.events, s2);
    expect(s3).toMatchObject({ deleted: true, members: [] });
    expect(decideGroupAll(s3, [{ kind: 'RenameGroup', displayName: 'x' }], at).rejection?.code).toBe('not_found');
  });

  it('refuses a stale revision or an empty name, and a refusal carries no events', () => {
    const s = fold(decideGroupAll(initialGroupState('g1'), [{ kind: 'CreateGroup', displayName: 'Ops', members: [] }], at).events);
    const stale = decideGroupAll(s, [{ kind: 'ExpectGroupRevision', revision: 7 }, { kind: 'RenameGroup', displayName: 'New' }], at);
    expect(stale).toEqual({ events: [], rejection: { code: 'stale', message: 'group g1 is at revision 0, not 7' } });
    expect(decideGroupAll(s, [{ kind: 'RenameGroup', displayName: '  ' }], at).rejection?.code).toBe('invalid');
    expect(decideGroupAll(s, [{ kind: 'CreateGroup', displayName: 'Again', members: [] }], at).rejection?.code).toBe('already_exists');
  });
});
