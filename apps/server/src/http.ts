/**
 * HTTP routes (CONTRACT sections 3, 6 and 7): health, readiness, metrics, the dev token,
 * the demo page and the API for other backends. WebSocket upgrades are in ws-gateway.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { HistoryPage, MessageBus } from '@retrotro/bus-core';
import type { Logger } from 'pino';
import type { Authenticator } from './auth.js';
import type { Config } from './config.js';
import type { Metrics } from './metrics.js';
import { ROOM_ID, isObject } from './protocol.js';

export interface HttpDeps {
  config: Config;
  bus: MessageBus;
  auth: Authenticator;
  metrics: Metrics;
  log: Logger;
}

const demoPage = (() => {
  try {
    return readFileSync(new URL('./public/index.html', import.meta.url));
  } catch {
    return Buffer.from('<!doctype html><title>retrotro</title><p>demo page missing: run pnpm build</p>');
  }
})();

/**
 * The page's SDK (@retrotro/client's ESM build, copied to dist/public/sdk by
 * scripts/copy-public.mjs), read once at start: `/sdk/<name>.js` is looked up by name in
 * this map, so no request path ever reaches the file system.
 */
const sdkFiles = (() => {
  const files = new Map<string, Buffer>();
  const dir = new URL('./public/sdk/', import.meta.url);
  try {
    for (const name of readdirSync(dir)) if (/^[a-z0-9-]+\.js$/.test(name)) files.set(name, readFileSync(new URL(name, dir)));
  } catch {
    // not built: /sdk/* answers 404
  }
  return files;
})();

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

type ApiAction = 'publish' | 'participants' | 'history';

function wholeNumber(s: string): number | undefined {
  return /^\d{1,15}$/.test(s) ? Number(s) : undefined;
}

const notFound = (res: ServerResponse) => json(res, 404, { error: 'not found' });

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A percent-decoded path segment; '' (an invalid room id) when the escapes are malformed. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/** Reads a request body up to `limit` bytes; undefined when it is larger. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else parts.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export function createRequestHandler(deps: HttpDeps) {
  const { config, bus, auth, metrics, log } = deps;
  const devMode = !config.jwtSecret && !config.production;

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    try {
      if (req.method === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok', podId: bus.podId });
      if (req.method === 'GET' && path === '/readyz') {
        return json(res, bus.ready ? 200 : 503, bus.status());
      }
      if (req.method === 'GET' && path === '/metrics') {
        const { contentType, body } = await metrics.render();
        res.writeHead(200, { 'content-type': contentType });
        return void res.end(body);
      }
      if (req.method === 'GET' && path === '/dev/token') {
        if (!devMode) return notFound(res);
        const name = (url.searchParams.get('name') ?? '').trim().slice(0, 64) || 'guest';
        return json(res, 200, { token: await auth.issue(name) });
      }
      if (req.method === 'GET' && (path === '/' || path === '/index.html')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-pod-id': bus.podId });
        return void res.end(demoPage);
      }
      if (req.method === 'GET' && path.startsWith('/sdk/')) {
        const file = sdkFiles.get(path.slice('/sdk/'.length));
        if (!file) return notFound(res);
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache', 'content-length': file.length });
        return void res.end(file);
      }
      // Browsers ask for it on every page load; no icon, and no 404 in their console.
      if (req.method === 'GET' && path === '/favicon.ico') return void res.writeHead(204).end();
      const api = /^\/api\/rooms\/([^/]+)\/(publish|participants|history)$/.exec(path);
      if (api) return await apiRoute(req, res, decodePathSegment(api[1]!), api[2] as ApiAction, url.searchParams);
      return notFound(res);
    } catch (e) {
      // The reason may name the database or broker: it goes to the log, not to the caller.
      log.error({ err: e, path }, 'HTTP request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  };

  async function apiRoute(req: IncomingMessage, res: ServerResponse, roomId: string, action: ApiAction, query: URLSearchParams) {
    if (!config.apiKey) return notFound(res);
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !sameSecret(m[1]!.trim(), config.apiKey)) return json(res, 401, { error: 'missing or wrong API key' });
    if (!ROOM_ID.test(roomId)) return json(res, 400, { error: 'room id must be 1-128 characters of [A-Za-z0-9._:-]' });
    if (action === 'participants') {
      if (req.method !== 'GET') return json(res, 405, { error: 'use GET' });
      return json(res, 200, { participants: bus.getRoomClients(roomId) });
    }
    if (action === 'history') {
      if (req.method !== 'GET') return json(res, 405, { error: 'use GET' });
      return history(res, roomId, query);
    }
    if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
    if (bus.overloaded) {
      // Truly over: the broker holds more than the high-water mark; callers come back shortly.
      res.setHeader('retry-after', '1');
      return json(res, 503, { error: 'overloaded: try again shortly' });
    }
    if (Number(req.headers['content-length']) > config.wsMaxPayload) {
      res.setHeader('connection', 'close'); // refuse without reading a body we will not use
      return json(res, 413, { error: `body exceeds ${config.wsMaxPayload} bytes` });
    }
    const body = await readBody(req, config.wsMaxPayload);
    if (body === undefined) return json(res, 413, { error: `body exceeds ${config.wsMaxPayload} bytes` });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return json(res, 400, { error: 'body is not JSON' });
    }
    if (!isObject(parsed) || typeof parsed.event !== 'string' || parsed.event === '') {
      return json(res, 400, { error: 'body must be {"event": non-empty string, "data": any}' });
    }
    const frame = {
      type: 'event',
      payload: { event: parsed.event, data: parsed.data ?? null, from: { userId: 'server', userName: 'server' } },
    };
    const r = await bus.publishEvent(roomId, frame.payload);
    if (!r.ok) {
      // Operator details (the broker's URL) stay in the bus's logs.
      const error = bus.historyEnabled
        ? 'relay_failed: the event could not be stored and relayed; send it again'
        : 'relay_failed: delivered on this server only; the other servers could not be reached';
      res.setHeader('retry-after', '1');
      return json(res, 503, { error });
    }
    return json(res, 202, { ok: true, offset: r.offset });
  }

  /** GET /api/rooms/{roomId}/history?since=N&limit=M (CONTRACT section 8). */
  async function history(res: ServerResponse, roomId: string, query: URLSearchParams) {
    if (!bus.historyEnabled) return json(res, 404, { error: 'history is off (HISTORY_SIZE=0)' });
    const since = wholeNumber(query.get('since') ?? '0');
    const limit = wholeNumber(query.get('limit') ?? '100');
    if (since === undefined) return json(res, 400, { error: 'since must be a whole number >= 0' });
    if (limit === undefined || limit < 1 || limit > 1000) return json(res, 400, { error: 'limit must be a whole number from 1 to 1000' });
    let page: HistoryPage;
    try {
      page = await bus.readHistory(roomId, since, limit);
    } catch (e) {
      log.warn({ err: e, roomId }, 'history read failed');
      res.setHeader('retry-after', '1');
      return json(res, 503, { error: 'history is unavailable; try again' });
    }
    const events = page.events.map((e) => ({ offset: e.offset, ...(JSON.parse(e.payload) as object) }));
    return json(res, 200, { epoch: page.epoch, offset: page.newest, events });
  }
}
