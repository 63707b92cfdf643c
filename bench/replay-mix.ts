import { event, hrKey, IdentityEvent } from '@idlc/domain';

/** The replay benchmark's event mix; also used by the bulk-rebuild equivalence test. */
const DEPARTMENTS = ['Engineering', 'Sales', 'Finance', 'Support', 'Marketing'];

/** Identity i's realistic history: hire, provisioning, birthright grants, logins, a move. */
export function history(i: number): IdentityEvent[] {
  const at = new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString();
  const dep = DEPARTMENTS[i % DEPARTMENTS.length];
  const moved = DEPARTMENTS[(i + 1) % DEPARTMENTS.length];
  return [
    event('IdentityHired', {
      employeeId: `E${i}`,
      effectiveAt: at,
      attributes: { givenName: 'Given' + i, familyName: 'Family' + i, email: `user${i}@example.com`, department: dep, title: 'Engineer', employmentType: 'employee', location: 'London' },
    }),
    event('ExternalKeyLinked', { key: hrKey(`E${i}`) }),
    event('AccountProvisioned', { source: 'hr', effectiveAt: at }),
    event('RoleGranted', { role: 'employee-basic', source: { kind: 'birthright', ruleId: 'default' } }),
    event('RoleGranted', { role: `${dep.toLowerCase()}-tools`, source: { kind: 'birthright', ruleId: dep.toLowerCase() } }),
    event('LoginRecorded', { at, issuer: 'https://idp.example.com', subject: `sub-${i}`, protocol: 'oidc' }),
    event('LoginRecorded', { at, issuer: 'https://idp.example.com', subject: `sub-${i}`, protocol: 'oidc' }),
    event('AttributesChanged', { changes: { department: { from: dep, to: moved } }, effectiveAt: at, source: 'hr' }),
    event('RoleRevoked', { role: `${dep.toLowerCase()}-tools`, source: { kind: 'birthright', ruleId: dep.toLowerCase() }, reason: 'recomputed' }),
    event('RoleGranted', { role: `${moved.toLowerCase()}-tools`, source: { kind: 'birthright', ruleId: moved.toLowerCase() } }),
  ];
}

