import { Public } from '../auth/scopes';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { problem } from '../common/problem';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** apps/ui next to the sources (ts-jest, ts-node) or from the working directory (compiled dist). */
function uiDir(): string {
  const candidates = [process.env.UI_DIR, resolve(__dirname, '../../../ui'), resolve(process.cwd(), 'apps/ui')].filter((d): d is string => !!d);
  return candidates.find((d) => existsSync(resolve(d, 'index.html'))) ?? candidates[candidates.length - 1];
}

/**
 * The auditors' page: hand-written ES modules served as they are (no bundler). Only the files
 * present at start are served, by exact name, so no path ever reaches the file system. The shell
 * holds no data (a browser navigation cannot carry a bearer token): every data call is authorized.
 */
@ApiExcludeController()
@Public()
@Controller('ui')
export class UiController {
  private readonly files = new Map<string, { type: string; body: Buffer }>();

  constructor() {
    const dir = uiDir();
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type) this.files.set(name, { type, body: readFileSync(resolve(dir, name)) });
    }
  }

  @Get()
  index(@Res() reply: FastifyReply) {
    return this.send('index.html', reply);
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() reply: FastifyReply) {
    return this.send(file, reply);
  }

  private send(name: string, reply: FastifyReply) {
    const f = this.files.get(name);
    if (!f) throw problem(404, 'not_found', 'Not found', `no UI file ${name}`);
    void reply
      .header('content-type', f.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      // Everything comes from this origin; no inline script, so XSS through event data cannot run.
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
      .send(f.body);
  }
}
