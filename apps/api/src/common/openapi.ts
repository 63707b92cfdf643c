import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';

/**
 * What the served OpenAPI document says about bodies and errors, so clients (and Schemathesis in
 * CI: scripts/schemathesis.sh) can rely on it: every status a route answers, with its real body.
 */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const str = { type: 'string' } as const;
const nullableStr = { type: 'string', nullable: true } as const;
const int = { type: 'integer' } as const;
const obj = (properties: Record<string, SchemaObject | { $ref: string }>, required = Object.keys(properties), extra: Partial<SchemaObject> = {}): SchemaObject => ({
  type: 'object',
  properties,
  required,
  ...extra,
});
const arrayOf = (items: SchemaObject | { $ref: string }, extra: Partial<SchemaObject> = {}): SchemaObject => ({ type: 'array', items, ...extra });

/** An account's status, as Identity and SsoLogin answer it. */
const ACCOUNT_STATUS: SchemaObject = { type: 'string', enum: ['none', 'pending', 'active', 'disabled', 'deleted'] };

const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$';
const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$';
const text = (maxLength: number): SchemaObject => ({ type: 'string', maxLength, pattern: NO_CONTROL, nullable: true });

const HR_ATTRIBUTES: SchemaObject = obj(
  {
    givenName: text(200),
    familyName: text(200),
    displayName: text(200),
    email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', nullable: true },
    phone: { type: 'string', maxLength: 50, pattern: '^[+0-9 ().-]{3,50}$', nullable: true },
    address: text(500),
    department: text(200),
    title: text(200),
    managerId: { type: 'string', pattern: ID_PATTERN, nullable: true },
    managerName: text(200),
    location: text(200),
    costCenter: text(100),
    employmentType: { type: 'string', enum: ['employee', 'contractor', 'intern', 'temporary', 'vendor'], nullable: true },
    division: text(200),
    organization: text(200),
  },
  [],
  { additionalProperties: false, description: 'A null clears the attribute (on change)' },
);

export const SCHEMAS: Record<string, SchemaObject> = {
  Problem: obj(
    {
      type: { type: 'string', format: 'uri', description: 'stable problem type, e.g. https://idlc.dev/problems/validation_failed' },
      title: str,
      status: { type: 'integer', minimum: 400, maximum: 599 },
      detail: str,
      instance: str,
      errors: arrayOf(obj({ field: str, message: str })),
    },
    ['type', 'title', 'status'],
    { description: 'RFC 7807 problem details; some types add members (eventId, reason, requiredScope)' },
  ),
  HrEvent: obj(
    {
      eventId: { type: 'string', pattern: ID_PATTERN, description: "the HR system's id: the idempotency key" },
      type: { type: 'string', enum: ['hire', 'change', 'terminate', 'rehire'] },
      employeeId: { type: 'string', pattern: ID_PATTERN },
      effectiveDate: {
        type: 'string',
        pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$',
        description: 'YYYY-MM-DD (00:00 UTC) or an ISO 8601 instant with offset',
        example: '2026-03-01',
      },
      attributes: { ...HR_ATTRIBUTES, description: 'required for hire' },
      reason: { type: 'string', minLength: 1, maxLength: 200, pattern: NO_CONTROL },
    },
    ['eventId', 'type', 'employeeId', 'effectiveDate'],
    { additionalProperties: false },
  ),
  HrBatch: obj({ events: arrayOf(ref('HrEvent'), { minItems: 1, maxItems: 1000 }) }, ['events'], { additionalProperties: false }),
  HrEventResult: obj(
    {
      eventId: str,
      status: { type: 'string', enum: ['applied', 'unchanged', 'duplicate', 'rejected'] },
      identityId: str,
      appended: int,
      error: obj({ code: str, message: str }),
    },
    ['eventId', 'status', 'appended'],
  ),
  HrEventsResponse: obj({
    correlationId: str,
    summary: obj({ applied: int, unchanged: int, duplicate: int, rejected: int }),
    results: arrayOf(ref('HrEventResult')),
  }),
  RoleGrant: obj({ role: str, source: { type: 'object', description: 'kind (birthright, manual, scim-group, ...) and its details' }, grantedAt: str }),
  Identity: obj({
    identityId: str,
    employeeId: nullableStr,
    status: ACCOUNT_STATUS,
    employment: { type: 'string', enum: ['none', 'pending', 'active', 'terminated'] },
    disabledReason: nullableStr,
    // Set once the identity's personal data was erased (right to be forgotten).
    erasedAt: nullableStr,
    attributes: { type: 'object', additionalProperties: { type: 'string' } },
    keys: arrayOf(str),
    roles: arrayOf(ref('RoleGrant')),
    heldRoles: arrayOf(str),
    provisionedAt: nullableStr,
    lastLoginAt: nullableStr,
    hireEffectiveAt: nullableStr,
    termination: { ...obj({ effectiveAt: str, reason: str, applied: { type: 'boolean' } }), nullable: true },
    pendingActivation: { ...obj({ kind: { type: 'string', enum: ['hire', 'rehire'] }, effectiveAt: str }), nullable: true },
    revision: int,
    createdAt: nullableStr,
    updatedAt: nullableStr,
  }),
  IdentityPage: obj({ items: arrayOf(ref('Identity')), next: { ...nullableStr, description: 'pass as `after` for the next page' } }),
  AdminActionResult: obj({ identity: ref('Identity'), appended: { ...arrayOf(str), description: 'event types appended (empty when nothing changed)' } }),
  EventRecord: obj({
    position: int,
    streamId: str,
    revision: int,
    recordedAt: str,
    type: str,
    version: int,
    source: nullableStr,
    actor: nullableStr,
    correlationId: nullableStr,
    causationId: nullableStr,
    prevHash: nullableStr,
    hash: nullableStr,
    data: { type: 'object' },
  }),
  History: obj({ identityId: str, events: arrayOf(ref('EventRecord')), nextRevision: { type: 'integer', nullable: true } }),
  StateAt: obj({ at: str, existed: { type: 'boolean' }, identity: { allOf: [ref('Identity')], nullable: true } }),
  RoleMembers: obj({
    role: str,
    at: str,
    members: arrayOf(obj({ identityId: str, source: { type: 'object' }, grantedAt: str, revokedAt: nullableStr })),
  }),
  Upcoming: obj({
    items: arrayOf(obj({ identityId: str, employeeId: nullableStr, action: str, dueAt: str, inProgress: { type: 'boolean' } })),
    before: nullableStr,
    limit: int,
    truncated: { type: 'boolean' },
  }),
  SsoLogin: obj({
    identityId: str,
    status: ACCOUNT_STATUS,
    roles: arrayOf(str),
    provisioned: { type: 'boolean', description: 'true when this login created the account (just in time)' },
  }),
  VerifyResult: obj({
    ok: { type: 'boolean' },
    eventsChecked: int,
    unhashed: int,
    lastPosition: int,
    firstBreak: {
      ...obj({
        streamId: str,
        revision: int,
        position: int,
        reason: { type: 'string', enum: ['hash_mismatch', 'prev_hash_mismatch', 'missing_event', 'missing_hash'] },
        expected: nullableStr,
        found: nullableStr,
      }),
      nullable: true,
    },
  }),
  ProjectionCheckpoint: obj({ name: str, version: int, position: int }),
  Ready: obj(
    {
      status: { type: 'string', enum: ['ready', 'not-ready'] },
      checks: obj(
        {
          eventStore: obj({ status: { type: 'string', enum: ['up', 'down'] }, backend: str, error: str }, ['status']),
          projections: obj({
            status: { type: 'string', enum: ['caught-up', 'lagging'] },
            lagEvents: int,
            maxLagEvents: int,
            checkpoints: arrayOf(ref('ProjectionCheckpoint')),
          }),
        },
        ['eventStore'],
      ),
    },
    ['status', 'checks'],
  ),
  Dashboard: obj({
    generatedAt: str,
    countsByStatus: { type: 'object', additionalProperties: int },
    total: int,
    weekly: arrayOf(obj({ weekStart: str, joiners: int, movers: int, leavers: int })),
    dueForInactivityDisablement: arrayOf(
      obj({ identityId: str, employeeId: nullableStr, displayName: nullableStr, status: nullableStr, nextAction: str, nextActionAt: str, disableAt: str }),
    ),
    projections: obj({ lagEvents: int, maxLagEvents: int, checkpoints: arrayOf(ref('ProjectionCheckpoint')) }),
  }),
  Deadlines: obj({ identityId: str, items: arrayOf(obj({ action: str, dueAt: str })) }),
};

/** Adds the named schemas to a generated document (they are referenced with `ref`). */
export function withSchemas(doc: OpenAPIObject): OpenAPIObject {
  doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, ...SCHEMAS } };
  return doc;
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (the problem lists the fields)',
  401: 'Missing or rejected credentials',
  403: 'Refused by policy',
  404: 'Not found',
  409: 'Refused: conflicts with the current state',
  413: 'Body too large',
  415: 'Unsupported content type (send application/json)',
  422: 'Refused as invalid for this identity',
  503: 'A dependency (event store, IdP) is unavailable; retry later',
};

/** problem+json answers with these statuses. */
export const ApiProblems = (...statuses: number[]) =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: DESCRIPTIONS[status] ?? 'Error', content: { 'application/problem+json': { schema: ref('Problem') } } }),
    ),
  );

/** A JSON answer with this schema (200 unless told). */
export const ApiJson = (schema: SchemaObject | { $ref: string }, status = 200, description = 'OK') =>
  ApiResponse({ status, description, content: { 'application/json': { schema } } });

/** Errors any route with a JSON body can answer before its handler runs. */
export const ApiBodyProblems = () => ApiProblems(400, 413, 415);
