import { groupEvent, GroupEvent, GroupMember } from './events';
import { evolveGroup, groupExists, GroupState } from './state';

export type GroupCommand =
  | { kind: 'CreateGroup'; displayName: string; externalId?: string; members: GroupMember[] }
  | { kind: 'RenameGroup'; displayName: string }
  | { kind: 'SetGroupExternalId'; externalId: string | null }
  | { kind: 'AddGroupMembers'; members: GroupMember[] }
  | { kind: 'RemoveGroupMembers'; values: string[] }
  /** The member list becomes exactly this: emits the removals and additions that get there. */
  | { kind: 'ReplaceGroupMembers'; members: GroupMember[] }
  | { kind: 'DeleteGroup' }
  | { kind: 'ExpectGroupRevision'; revision: number };

export type GroupRejectionCode = 'not_found' | 'already_exists' | 'invalid' | 'stale';

export interface GroupDecision {
  events: GroupEvent[];
  rejection?: { code: GroupRejectionCode; message: string };
}

const reject = (code: GroupRejectionCode, message: string): GroupDecision => ({ events: [], rejection: { code, message } });

function dedupe(members: GroupMember[]): GroupMember[] {
  const seen = new Set<string>();
  return members.filter((m) => !seen.has(m.value) && (seen.add(m.value), true));
}

/** Decides one command against a group: pure. A refusal never carries events. */
export function decideGroup(state: GroupState, cmd: GroupCommand): GroupDecision {
  if (cmd.kind === 'ExpectGroupRevision') {
    return state.revision === cmd.revision ? { events: [] } : reject('stale', `group ${state.groupId} is at revision ${state.revision}, not ${cmd.revision}`);
  }
  if (cmd.kind === 'CreateGroup') {
    if (state.revision >= 0) return reject('already_exists', `group ${state.groupId} already exists`);
    if (!cmd.displayName.trim()) return reject('invalid', 'displayName must not be empty');
    return { events: [groupEvent('GroupCreated', { displayName: cmd.displayName, externalId: cmd.externalId, members: dedupe(cmd.members) })] };
  }
  if (!groupExists(state)) return reject('not_found', `group ${state.groupId} does not exist`);
  const current = new Set(state.members.map((m) => m.value));
  switch (cmd.kind) {
    case 'RenameGroup':
      if (!cmd.displayName.trim()) return reject('invalid', 'displayName must not be empty');
      return cmd.displayName === state.displayName ? { events: [] } : { events: [groupEvent('GroupRenamed', { from: state.displayName, to: cmd.displayName })] };
    case 'SetGroupExternalId':
      return (cmd.externalId ?? undefined) === state.externalId ? { events: [] } : { events: [groupEvent('GroupExternalIdChanged', { externalId: cmd.externalId })] };
    case 'AddGroupMembers': {
      const added = dedupe(cmd.members).filter((m) => !current.has(m.value));
      return added.length ? { events: [groupEvent('GroupMembersAdded', { members: added })] } : { events: [] };
    }
    case 'RemoveGroupMembers': {
      const removed = [...new Set(cmd.values)].filter((v) => current.has(v));
      return removed.length ? { events: [groupEvent('GroupMembersRemoved', { values: removed })] } : { events: [] };
    }
    case 'ReplaceGroupMembers': {
      const next = dedupe(cmd.members);
      const wanted = new Set(next.map((m) => m.value));
      const events: GroupEvent[] = [];
      const removed = state.members.filter((m) => !wanted.has(m.value)).map((m) => m.value);
      if (removed.length) events.push(groupEvent('GroupMembersRemoved', { values: removed }));
      const added = next.filter((m) => !current.has(m.value));
      if (added.length) events.push(groupEvent('GroupMembersAdded', { members: added }));
      return { events };
    }
    case 'DeleteGroup': {
      const events: GroupEvent[] = [];
      // Members are removed first, so the history says whose access the deletion took away.
      if (state.members.length) events.push(groupEvent('GroupMembersRemoved', { values: state.members.map((m) => m.value) }));
      events.push(groupEvent('GroupDeleted', {}));
      return { events };
    }
  }
}

/** Several commands in a row; the first refusal stops everything (nothing is appended then). */
export function decideGroupAll(state: GroupState, cmds: GroupCommand[], at: string): GroupDecision {
  let s = state;
  const events: GroupEvent[] = [];
  for (const c of cmds) {
    const r = decideGroup(s, c);
    if (r.rejection) return { events: [], rejection: r.rejection };
    for (const e of r.events) {
      events.push(e);
      s = evolveGroup(s, e, at);
    }
  }
  return { events };
}
