import type { GroupEvent, GroupMember } from './events';

export interface GroupState {
  groupId: string;
  /** Revision of the last folded event; -1 for a group with no events. */
  revision: number;
  displayName: string;
  externalId?: string;
  members: GroupMember[];
  deleted: boolean;
  createdAt?: string;
  updatedAt?: string;
}

export const initialGroupState = (groupId: string): GroupState => ({ groupId, revision: -1, displayName: '', members: [], deleted: false });

export const groupExists = (s: GroupState): boolean => s.revision >= 0 && !s.deleted;

/** The pure fold of a group's events. */
export function evolveGroup(s: GroupState, e: GroupEvent, at: string, revision = s.revision + 1): GroupState {
  const n: GroupState = { ...s, revision, updatedAt: at, createdAt: s.createdAt ?? at };
  switch (e.type) {
    case 'GroupCreated':
      n.displayName = e.data.displayName;
      n.externalId = e.data.externalId;
      n.members = [...e.data.members];
      n.deleted = false;
      break;
    case 'GroupRenamed':
      n.displayName = e.data.to;
      break;
    case 'GroupExternalIdChanged':
      n.externalId = e.data.externalId ?? undefined;
      break;
    case 'GroupMembersAdded': {
      const have = new Set(s.members.map((m) => m.value));
      n.members = [...s.members, ...e.data.members.filter((m) => !have.has(m.value))];
      break;
    }
    case 'GroupMembersRemoved': {
      const gone = new Set(e.data.values);
      n.members = s.members.filter((m) => !gone.has(m.value));
      break;
    }
    case 'GroupDeleted':
      n.deleted = true;
      n.members = [];
      break;
  }
  return n;
}
