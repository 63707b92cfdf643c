import { Public } from '../auth/scopes';
import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiJson, ref } from '../common/openapi';
import { Engine } from '@idlc/engine';
import type { FastifyReply } from 'fastify';

@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(private readonly engine: Engine) {}

  /** Liveness: the process answers. */
  @Get('health')
  @HttpCode(200)
  @ApiJson({ type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] })
  health() {
    return { status: 'ok' };
  }

  /** Readiness: the event store answers and projections are caught up within the configured bound. */
  @Get('ready')
  @ApiJson(ref('Ready'))
  @ApiJson(ref('Ready'), 503, 'Not ready: the event store is down or projections lag beyond READY_MAX_LAG_EVENTS')
  async ready(@Res() reply: FastifyReply) {
    const checks: Record<string, unknown> = {};
    let ok = true;
    try {
      await this.engine.store.ping();
      checks.eventStore = { status: 'up', backend: this.engine.store.backend };
    } catch (e) {
      ok = false;
      checks.eventStore = { status: 'down', error: (e as Error).message };
    }
    if (ok) {
      const lag = await this.engine.projections.lag();
      const bound = this.engine.config.readyMaxLagEvents;
      const within = this.engine.config.workerMode === 'api' || lag <= bound;
      ok = within;
      checks.projections = { status: within ? 'caught-up' : 'lagging', lagEvents: lag, maxLagEvents: bound, checkpoints: this.engine.projections.status() };
    }
    void reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', checks });
  }
}
