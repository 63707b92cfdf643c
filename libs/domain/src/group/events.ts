import { upcasters } from '../identity/upcasting';
/**
 * SCIM group events, on streams of their own (`scim-group-<id>`). Like identity events, a published
 * type is never renamed or deleted.
 */
export interface GroupMember {
  /** The member's SCIM id: an identity id for a User, a group id for a Group. */
  value: string;
  type: 'User' | 'Group';
  /** The label the client sent with the member, if any (Okta sends one). */
  display?: string;
}

export interface GroupEventShapes {
  GroupCreated: { displayName: string; externalId?: string; members: GroupMember[] };
  GroupRenamed: { from: string; to: string };
  GroupExternalIdChanged: { externalId: string | null };
  GroupMembersAdded: { members: GroupMember[] };
  GroupMembersRemoved: { values: string[] };
  GroupDeleted: Record<string, never>;
}

export type GroupEventType = keyof GroupEventShapes;

export const GROUP_EVENT_VERSIONS: Record<GroupEventType, number> = {
  GroupCreated: 1,
  GroupRenamed: 1,
  GroupExternalIdChanged: 1,
  GroupMembersAdded: 1,
  GroupMembersRemoved: 1,
  GroupDeleted: 1,
};

export type GroupEvent = { [T in GroupEventType]: { type: T; version: number; data: GroupEventShapes[T] } }[GroupEventType];

export function groupEvent<T extends GroupEventType>(type: T, data: GroupEventShapes[T]): { type: T; version: number; data: GroupEventShapes[T] } {
  return { type, version: GROUP_EVENT_VERSIONS[type], data };
}

export const isGroupEventType = (t: string): t is GroupEventType => t in GROUP_EVENT_VERSIONS;

/** Stored group events upcast through the engine's one registry, to the version this engine writes. */
export function toGroupEvent(stored: { type: string; version: number; data: unknown }): GroupEvent | null {
  if (!isGroupEventType(stored.type)) return null;
  const { version, data } = upcasters.upcast(stored.type, stored.version, stored.data, GROUP_EVENT_VERSIONS[stored.type]);
  return { type: stored.type, version, data } as GroupEvent;
}

export const GROUP_STREAM_PREFIX = 'scim-group-';
export const groupStream = (groupId: string): string => `${GROUP_STREAM_PREFIX}${groupId}`;
export const groupIdOf = (streamId: string): string => streamId.slice(GROUP_STREAM_PREFIX.length);
