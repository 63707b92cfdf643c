import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { Engine } from '@idlc/engine';
import { AdminController } from './admin/admin.controller';
import { AuthGuard } from './auth/auth.guard';
import { CredentialsController } from './auth/credentials.controller';
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
      // Every route needs a scoped credential unless marked @Public (see auth/auth.guard.ts).
      providers: [{ provide: APP_GUARD, useClass: AuthGuard }],
      controllers: [HealthController, HrFeedController, AuditController, AdminController, DeprovisioningController, SsoController, ScimController, AuditToolkitController, CredentialsController],
    };
  }
}
