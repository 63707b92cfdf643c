import { DynamicModule, Module } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { Engine } from '@idlc/engine';
import { AdminController } from './admin/admin.controller';
import { AuditController } from './audit/audit.controller';
import { AuditToolkitController } from './audit-toolkit/audit-toolkit.controller';
import { DeprovisioningController } from './deprovisioning/deprovisioning.controller';
import { EngineModule } from './common/engine.module';
import { HealthController } from './health/health.controller';
import { HrFeedController } from './hr-feed/hr-feed.controller';
import { ScimController } from './scim/scim.controller';
import { SsoController } from './sso/sso.controller';
import { UiModule } from './ui/ui.module';

@Module({})
export class AppModule {
  static forEngine(engine: Engine): DynamicModule {
    return {
      module: AppModule,
      imports: [EngineModule.forEngine(engine), CqrsModule.forRoot(), UiModule],
      controllers: [HealthController, HrFeedController, AuditController, AdminController, DeprovisioningController, SsoController, ScimController, AuditToolkitController],
    };
  }
}
