import { AuthenticatedRequest, RequireScope } from '../auth/scopes';
import { Body, Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiBodyProblems, ApiJson, ApiProblems, ref } from '../common/openapi';
import { Engine, HrFeedService, parseHrPayload } from '@idlc/engine';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { problem } from '../common/problem';
import { SIGNATURE_HEADER, verifySignature } from './hmac';

@ApiTags('hr-feed')
@RequireScope('hr:write')
@Controller('hr')
export class HrFeedController {
  private readonly service: HrFeedService;

  constructor(private readonly engine: Engine) {
    this.service = new HrFeedService(engine.commands);
  }

  @Post('events')
  @HttpCode(200)
  @ApiOperation({ summary: 'Receive one HR event or a batch of up to 1000 (hire, change, terminate, rehire)' })
  @ApiHeader({ name: SIGNATURE_HEADER, required: true, description: 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">' })
  @ApiBody({ schema: { anyOf: [ref('HrEvent'), ref('HrBatch')] } })
  @ApiJson(ref('HrEventsResponse'), 200, 'Per-event results; in a batch a rejected event does not stop the others')
  @ApiBodyProblems()
  @ApiProblems(401, 404, 409, 503)
  async receive(@Req() req: FastifyRequest & AuthenticatedRequest & { rawBody?: Buffer }, @Headers(SIGNATURE_HEADER) signature: string | undefined, @Body() body: unknown) {
    const check = verifySignature(
      signature,
      req.rawBody ?? Buffer.alloc(0),
      this.engine.config.hrWebhookSecrets,
      this.engine.clock.now().getTime(),
      this.engine.config.hrWebhookToleranceSeconds,
    );
    if (!check.ok) throw problem(401, 'invalid_signature', 'Webhook signature rejected', check.reason);
    const parsed = parseHrPayload(body);
    if (!parsed.ok) {
      throw problem(400, 'validation_failed', 'HR event validation failed', parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
        errors: parsed.errors,
      });
    }
    const ids = parsed.events.map((e) => e.eventId);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup) throw problem(400, 'validation_failed', 'HR event validation failed', `eventId ${dup} appears twice in the batch`);
    const correlationId = (req.headers['x-correlation-id'] as string | undefined)?.slice(0, 128) ?? randomUUID();
    const results = await this.service.applyAll(parsed.events, { source: 'hr-webhook', actor: req.principal?.actor ?? 'hr-webhook', correlationId });
    if (!('events' in (body as object)) && results[0].status === 'rejected') {
      const r = results[0];
      throw problem(r.error!.code === 'unknown_employee' ? 404 : 409, r.error!.code, 'HR event rejected', r.error!.message, { eventId: r.eventId });
    }
    const summary = { applied: 0, unchanged: 0, duplicate: 0, rejected: 0 };
    for (const r of results) summary[r.status]++;
    return { correlationId, summary, results };
  }
}
