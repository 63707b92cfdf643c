export * from './projection';
export * from './projection-runner';
export * from './identities.projection';
export * from './role-assignments.projection';
export * from './audit-timeline.projection';

import type { LifecyclePolicy } from '@idlc/domain';
import { DeadlinesProjection } from '../sagas/deadlines.projection';
import { AuditTimelineProjection } from './audit-timeline.projection';
import { IdentitiesProjection } from './identities.projection';
import { Projection } from './projection';
import { RoleAssignmentsProjection } from './role-assignments.projection';
import { ScimProjection } from '../scim/projection';

export const coreProjections = (lifecycle?: LifecyclePolicy): Projection[] => [new IdentitiesProjection(), new DeadlinesProjection(lifecycle), new RoleAssignmentsProjection(), new AuditTimelineProjection(), new ScimProjection()];
