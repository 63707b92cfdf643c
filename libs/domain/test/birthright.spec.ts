import { BirthrightEngine, DEFAULT_RULE_ID, EMPTY_POLICY, parseBirthrightPolicy, PolicyError } from '../src';
import { POLICY_DOC } from './support';

const rule = (when: unknown, id = 'r1', roles: unknown = ['role-a']) => ({ version: 1, defaultRoles: [], rules: [{ id, when, roles }] });
const matches = (when: unknown, attributes: Record<string, string>) => BirthrightEngine.from(rule(when)).evaluate(attributes).has('role-a');
const errorOf = (doc: unknown): string => {
  try {
    parseBirthrightPolicy(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as Error).message;
  }
  throw new Error('policy was accepted');
};

describe('BirthrightEngine.evaluate', () => {
  const engine = BirthrightEngine.from(POLICY_DOC);

  it('grants the default roles with rule id `default` plus the roles of every matching rule', () => {
    expect([...engine.evaluate({ department: 'Engineering', title: 'Head of Platform' })]).toEqual([
      ['employee', DEFAULT_RULE_ID],
      ['git', 'eng'],
      ['ci', 'eng'],
      ['approver', 'heads'],
    ]);
    expect([...engine.evaluate({})]).toEqual([['employee', 'default']]);
    expect(DEFAULT_RULE_ID).toBe('default');
  });

  it('a role granted by several rules is attributed to the first (defaults first)', () => {
    const e = BirthrightEngine.from({
      version: 1,
      defaultRoles: ['base'],
      rules: [
        { id: 'a', when: { attribute: 'location', equals: 'Berlin' }, roles: ['vpn', 'base'] },
        { id: 'b', when: { attribute: 'location', prefix: 'Ber' }, roles: ['vpn', 'eu'] },
      ],
    });
    expect([...e.evaluate({ location: 'Berlin' })]).toEqual([
      ['base', 'default'],
      ['vpn', 'a'],
      ['eu', 'b'],
    ]);
    expect([...e.evaluate({ location: 'Bern' })]).toEqual([
      ['base', 'default'],
      ['vpn', 'b'],
      ['eu', 'b'],
    ]);
  });

  it('equals is case-sensitive unless ignoreCase', () => {
    expect(matches({ attribute: 'department', equals: 'Sales' }, { department: 'Sales' })).toBe(true);
    expect(matches({ attribute: 'department', equals: 'Sales' }, { department: 'sales' })).toBe(false);
    expect(matches({ attribute: 'department', equals: 'Sales', ignoreCase: true }, { department: 'SALES' })).toBe(true);
    expect(matches({ attribute: 'department', equals: 'Sales' }, {})).toBe(false);
  });

  it('in, with and without ignoreCase', () => {
    const when = { attribute: 'location', in: ['Berlin', 'Paris'] };
    expect(matches(when, { location: 'Paris' })).toBe(true);
    expect(matches(when, { location: 'paris' })).toBe(false);
    expect(matches(when, { location: 'Rome' })).toBe(false);
    expect(matches({ ...when, ignoreCase: true }, { location: 'PARIS' })).toBe(true);
  });

  it('prefix, with and without ignoreCase', () => {
    expect(matches({ attribute: 'costCenter', prefix: 'CC-1' }, { costCenter: 'CC-100' })).toBe(true);
    expect(matches({ attribute: 'costCenter', prefix: 'CC-1' }, { costCenter: 'cc-100' })).toBe(false);
    expect(matches({ attribute: 'costCenter', prefix: 'CC-1', ignoreCase: true }, { costCenter: 'cc-100' })).toBe(true);
    expect(matches({ attribute: 'costCenter', prefix: 'CC-1' }, { costCenter: 'CC-200' })).toBe(false);
  });

  it('regex, with and without ignoreCase', () => {
    expect(matches({ attribute: 'title', regex: '^(Senior|Staff) Engineer$' }, { title: 'Staff Engineer' })).toBe(true);
    expect(matches({ attribute: 'title', regex: '^(Senior|Staff) Engineer$' }, { title: 'Principal Engineer' })).toBe(false);
    expect(matches({ attribute: 'title', regex: '^(Senior|Staff) Engineer$' }, { title: 'staff engineer' })).toBe(false);
    expect(matches({ attribute: 'title', regex: '^(Senior|Staff) Engineer$', ignoreCase: true }, { title: 'staff engineer' })).toBe(true);
    expect(matches({ attribute: 'title', regex: '.*' }, {})).toBe(false);
  });

  it('exists: present and non-empty', () => {
    expect(matches({ attribute: 'managerId', exists: true }, { managerId: 'm1' })).toBe(true);
    expect(matches({ attribute: 'managerId', exists: true }, { managerId: '' })).toBe(false);
    expect(matches({ attribute: 'managerId', exists: true }, {})).toBe(false);
    expect(matches({ attribute: 'managerId', exists: false }, {})).toBe(true);
    expect(matches({ attribute: 'managerId', exists: false }, { managerId: 'm1' })).toBe(false);
  });

  it('and / or / not compose', () => {
    const when = {
      and: [
        { or: [{ attribute: 'department', equals: 'Engineering' }, { attribute: 'department', equals: 'Research' }] },
        { not: { attribute: 'employmentType', equals: 'contractor' } },
      ],
    };
    expect(matches(when, { department: 'Research', employmentType: 'employee' })).toBe(true);
    expect(matches(when, { department: 'Research' })).toBe(true);
    expect(matches(when, { department: 'Engineering', employmentType: 'contractor' })).toBe(false);
    expect(matches(when, { department: 'Sales', employmentType: 'employee' })).toBe(false);
  });

  it('the empty policy grants nothing', () => {
    expect(new BirthrightEngine(EMPTY_POLICY).evaluate({ department: 'Engineering' }).size).toBe(0);
  });
});

describe('parseBirthrightPolicy', () => {
  it('accepts a valid policy, defaulting defaultRoles and keeping descriptions', () => {
    const p = parseBirthrightPolicy({ version: 1, rules: [{ id: 'eng', description: 'engineers', when: { attribute: 'department', equals: 'Engineering' }, roles: ['git'] }] });
    expect(p).toEqual({ version: 1, defaultRoles: [], rules: [{ id: 'eng', description: 'engineers', when: { attribute: 'department', equals: 'Engineering' }, roles: ['git'] }] });
  });

  it('names the rule and field of an unknown attribute', () => {
    expect(errorOf(rule({ attribute: 'dept', equals: 'x' }, 'eng'))).toBe("birthright policy: rule 'eng' (rules[0]): when: unknown attribute 'dept'");
  });

  it('names the rule and field of a bad regex', () => {
    expect(errorOf(rule({ attribute: 'title', regex: '([a-z' }, 'titles'))).toMatch(/^birthright policy: rule 'titles' \(rules\[0\]\): when\.regex: invalid regular expression: /);
  });

  it('names a duplicate rule id and where it is', () => {
    const doc = {
      version: 1,
      defaultRoles: [],
      rules: [
        { id: 'eng', when: { attribute: 'department', equals: 'Engineering' }, roles: ['git'] },
        { id: 'eng', when: { attribute: 'department', equals: 'Research' }, roles: ['git'] },
      ],
    };
    expect(errorOf(doc)).toBe("birthright policy: rule 'eng' (rules[1]): duplicate rule id");
  });

  it('points into nested conditions', () => {
    const when = { and: [{ attribute: 'department', equals: 'x' }, { not: { attribute: 'title', prefix: 3 } }] };
    expect(errorOf(rule(when, 'nested'))).toBe("birthright policy: rule 'nested' (rules[0]): when.and[1].not.prefix: must be a string");
    expect(errorOf(rule({ or: [] }, 'o'))).toBe("birthright policy: rule 'o' (rules[0]): when.or: must be a non-empty list");
    expect(errorOf(rule({ and: [{ attribute: 'nope', exists: true }] }, 'a'))).toBe("birthright policy: rule 'a' (rules[0]): when.and[0]: unknown attribute 'nope'");
  });

  it('rejects other malformed rules with the rule and field named', () => {
    expect(errorOf(rule({ attribute: 'department', equals: 'x' }, 'default'))).toBe("birthright policy: rule 'default' (rules[0]): id 'default' is reserved for defaultRoles");
    expect(errorOf(rule({ attribute: 'department', equals: 'x' }, 'r', []))).toBe("birthright policy: rule 'r' (rules[0]): roles must be a non-empty list of role names");
    expect(errorOf(rule({ attribute: 'department', equals: 'x' }, 'r', ['has space']))).toBe("birthright policy: rule 'r' (rules[0]): roles must be a non-empty list of role names");
    expect(errorOf(rule({ attribute: 'department' }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when: needs exactly one of equals, in, prefix, regex, exists");
    expect(errorOf(rule({ attribute: 'department', equals: 'x', prefix: 'y' }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when: needs exactly one of equals, in, prefix, regex, exists");
    expect(errorOf(rule({ attribute: 'department', equals: 'x', caseless: true }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when: unknown field 'caseless'");
    expect(errorOf(rule({ attribute: 'department', in: ['a', 1] }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when.in: must be a list of strings");
    expect(errorOf(rule({ attribute: 'department', exists: 'yes' }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when.exists: must be true or false");
    expect(errorOf(rule({ attribute: 'department', equals: 'x', ignoreCase: 'y' }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when.ignoreCase: must be true or false");
    expect(errorOf(rule({ and: [{ attribute: 'department', exists: true }], or: [] }, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when: 'and' must stand alone");
    expect(errorOf(rule(undefined, 'r'))).toBe("birthright policy: rule 'r' (rules[0]): when: must be a condition object");
    expect(errorOf({ version: 1, rules: [{ when: { attribute: 'department', exists: true }, roles: ['x'] }] })).toBe('birthright policy: rules[0]: id must be a short identifier');
  });

  it('rejects a malformed document', () => {
    expect(errorOf(null)).toBe('birthright policy: document: must be an object with version, defaultRoles and rules');
    expect(errorOf({ version: 2, rules: [] })).toBe('birthright policy: version: must be 1');
    expect(errorOf({ version: 1, defaultRoles: ['ok', ''], rules: [] })).toMatch(/^birthright policy: defaultRoles: /);
    expect(errorOf({ version: 1, defaultRoles: [] })).toBe('birthright policy: rules: must be a list');
  });
});
