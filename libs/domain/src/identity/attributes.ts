/** Engine attributes an identity carries. Email is one of them, never a key. */
export const ATTRIBUTE_NAMES = [
  'givenName',
  'familyName',
  'displayName',
  'email',
  'phone',
  'address',
  'department',
  'title',
  'managerId',
  'managerName',
  'location',
  'costCenter',
  'employmentType',
  'division',
  'organization',
] as const;
export type AttributeName = (typeof ATTRIBUTE_NAMES)[number];
export type Attributes = Partial<Record<AttributeName, string>>;

/** Personal data: encrypted at rest and erasable (right to be forgotten). */
export const PERSONAL_ATTRIBUTES: readonly AttributeName[] = ['givenName', 'familyName', 'displayName', 'email', 'phone', 'address', 'managerName'];

const NAMES = new Set<string>(ATTRIBUTE_NAMES);
export const isAttributeName = (n: string): n is AttributeName => NAMES.has(n);

export type AttributeChanges = Partial<Record<AttributeName, { from: string | null; to: string | null }>>;

/**
 * The changes that would turn `current` into `current + next`. A null value in `next` clears the
 * attribute; a key absent from `next` is left alone.
 */
export function diffAttributes(current: Attributes, next: Partial<Record<AttributeName, string | null>>): AttributeChanges {
  const changes: AttributeChanges = {};
  for (const name of ATTRIBUTE_NAMES) {
    if (!(name in next)) continue;
    const to = next[name] ?? null;
    const from = current[name] ?? null;
    if (from !== to) changes[name] = { from, to };
  }
  return changes;
}

export function applyChanges(current: Attributes, changes: AttributeChanges): Attributes {
  const out: Attributes = { ...current };
  for (const [name, change] of Object.entries(changes) as [AttributeName, { to: string | null }][]) {
    if (change.to === null) delete out[name];
    else out[name] = change.to;
  }
  return out;
}
