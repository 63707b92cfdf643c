import { Module } from '@nestjs/common';
import { AuditDashboardController } from './dashboard.controller';
import { UiController } from './ui.controller';

/** The auditors' web page at /ui and the aggregates it reads. */
@Module({ controllers: [UiController, AuditDashboardController] })
export class UiModule {}
