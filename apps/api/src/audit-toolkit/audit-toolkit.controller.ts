import { RequireScope } from '../auth/scopes';
import { Controller, Get, Query, StreamableFile } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { identityStream } from '@idlc/domain';
import { Engine, exportLines, ExportFormat, verifyChains } from '@idlc/engine';
import { Readable } from 'node:stream';
import { ApiJson, ApiProblems, ref } from '../common/openapi';
import { problem } from '../common/problem';

const ID = /^[A-Za-z0-9-]{1,64}$/;

function only(q: Record<string, unknown>, allowed: string[]): Record<string, string | undefined> {
  const unknown = Object.keys(q).filter((k) => !allowed.includes(k));
  if (unknown.length) throw problem(400, 'validation_failed', 'Unknown query parameter', `unknown: ${unknown.join(', ')}`);
  for (const [k, v] of Object.entries(q)) {
    if (typeof v !== 'string' || v.length > 256) throw problem(400, 'validation_failed', 'Invalid query parameter', `${k} must be one string of at most 256 characters`);
  }
  return q as Record<string, string | undefined>;
}

function instant(name: string, v: string | undefined): Date | undefined {
  if (v === undefined || v === '') return undefined;
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw problem(400, 'validation_failed', 'Invalid query parameter', `${name} must be an ISO 8601 instant`);
  return d;
}

/** Auditor toolkit: hash-chain verification and streamed exports of the event history. */
@ApiTags('audit')
@RequireScope('audit:read')
@ApiProblems(400, 404, 503)
@Controller('audit')
export class AuditToolkitController {
  constructor(private readonly engine: Engine) {}

  private async identity(id: string | undefined): Promise<string | undefined> {
    if (id === undefined) return undefined;
    if (!ID.test(id)) throw problem(400, 'validation_failed', 'Invalid query parameter', 'identity must be an identity id');
    if ((await this.engine.store.streamRevision(identityStream(id))) < 0) throw problem(404, 'identity_not_found', 'Identity not found', `no identity ${id}`);
    return id;
  }

  @Get('verify')
  @ApiOperation({ summary: 'Recompute the hash chains of identity and group streams; report the first broken link' })
  @ApiQuery({ name: 'identity', required: false })
  @ApiJson(ref('VerifyResult'))
  async verify(@Query() query: Record<string, unknown>) {
    const q = only(query, ['identity']);
    const id = await this.identity(q.identity);
    return verifyChains(this.engine.rawStore, { streamId: id ? identityStream(id) : undefined });
  }

  @Get('export')
  @ApiOperation({ summary: 'Stream events (one identity or all) as JSON lines or CSV, optionally within a recordedAt range' })
  @ApiQuery({ name: 'identity', required: false })
  @ApiQuery({ name: 'from', required: false, schema: { type: 'string', format: 'date-time' } })
  @ApiQuery({ name: 'to', required: false, schema: { type: 'string', format: 'date-time' } })
  @ApiQuery({ name: 'format', required: false, enum: ['jsonl', 'csv'] })
  @ApiResponse({
    status: 200,
    description: 'An attachment: JSON lines (one EventRecord each) or CSV with the same columns',
    content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } },
  })
  async export(@Query() query: Record<string, unknown>): Promise<StreamableFile> {
    const q = only(query, ['identity', 'from', 'to', 'format']);
    const format = (q.format ?? 'jsonl') as ExportFormat;
    if (format !== 'jsonl' && format !== 'csv') throw problem(400, 'validation_failed', 'Invalid query parameter', 'format must be jsonl or csv');
    const from = instant('from', q.from);
    const to = instant('to', q.to);
    if (from && to && from > to) throw problem(400, 'validation_failed', 'Invalid query parameter', 'from must not be after to');
    const identityId = await this.identity(q.identity);
    // Readable.from pulls one page at a time, as fast as the client reads: memory stays bounded.
    const body = Readable.from(exportLines(this.engine.store, format, { identityId, from, to }));
    return new StreamableFile(body, {
      type: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      disposition: `attachment; filename="idlc-export.${format}"`,
    });
  }
}
