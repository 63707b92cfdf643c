export * from './projection';
export * from './projection-runner';
export * from './identities.projection';
export * from './role-assignments.projection';
export * from './audit-timeline.projection';

import { AuditTimelineProjection } from './audit-timeline.projection';
import { IdentitiesProjection } from './identities.projection';
import { Projection } from './projection';
import { RoleAssignmentsProjection } from './role-assignments.projection';

export const coreProjections = (): Projection[] => [new IdentitiesProjection(), new RoleAssignmentsProjection(), new AuditTimelineProjection()];
