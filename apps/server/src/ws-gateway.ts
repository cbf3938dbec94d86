/**
 * WebSocket upgrades: origin check, token check (401 before any socket exists), then the
 * socket is handed to the protocol handler. Also closes sockets whose token expires (4001).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { AuthError, tokenFromRequest, type Authenticator } from './auth.js';
import type { Config } from './config.js';
import type { Handler } from './handler.js';
import type { ClientSocket } from './hub.js';

/** How long a peer has to answer a close frame the server sent before its TCP connection is cut. */
const CLOSE_DEADLINE_MS = 5_000;
/** A Buffer passed to send() holds UTF-8 JSON: still a text frame. */
const TEXT_FRAME = { binary: false } as const;

function refuse(socket: Duplex, status: number, text: string, reason: string): void {
  const body = JSON.stringify({ error: reason });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function attachWebSockets(server: Server, config: Config, auth: Authenticator, handler: Handler, log: Logger) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.wsMaxPayload, // larger frames: ws closes with 1009
    perMessageDeflate: config.perMessageDeflate,
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return refuse(socket, 404, 'Not Found', 'WebSocket endpoint is /ws');
    const origin = req.headers.origin;
    if (config.allowedOrigins && origin !== undefined && !config.allowedOrigins.includes(origin)) {
      return refuse(socket, 403, 'Forbidden', 'origin not allowed');
    }
    auth.verify(tokenFromRequest(url, req.headers.authorization)).then(
      (identity) => {
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          // Server-initiated closes (slow consumer 1013, flood 1008, expiry 4001, shutdown 1001)
          // get a deadline: ws would wait 30 s for the peer's close frame, and a peer that
          // stopped reading never sends it, keeping its buffers and its presence meanwhile.
          let closeDeadline: NodeJS.Timeout | undefined;
          const clientSocket: ClientSocket = {
            send: (data) => ws.send(data, TEXT_FRAME),
            cork: () => socket.cork(),
            uncork: () => socket.uncork(),
            // Backpressure: no more frames read from this peer until resume (TCP pushes back).
            pause: () => socket.pause(),
            resume: () => socket.resume(),
            close: (code, reason) => {
              ws.close(code, reason);
              closeDeadline ??= setTimeout(() => ws.terminate(), CLOSE_DEADLINE_MS);
            },
            get bufferedAmount() {
              return ws.bufferedAmount;
            },
          };
          const conn = handler.connect(clientSocket, identity);
          let expiry: NodeJS.Timeout | undefined;
          if (identity.expiresAt !== undefined) {
            const ms = Math.max(0, identity.expiresAt - Date.now());
            // setTimeout cannot wait longer than ~24.8 days; such tokens just stay open.
            if (ms < 2 ** 31 - 1) expiry = setTimeout(() => clientSocket.close(4001, 'token expired'), ms);
          }
          ws.on('message', (data, isBinary) => {
            conn.message(data.toString(), isBinary);
          });
          ws.on('close', () => {
            clearTimeout(expiry);
            clearTimeout(closeDeadline);
            conn.close();
          });
          ws.on('error', (err) => log.debug({ err, clientId: conn.client.id }, 'socket error'));
        });
      },
      (e: unknown) => {
        const reason = e instanceof AuthError ? e.message : 'authentication failed';
        refuse(socket, 401, 'Unauthorized', reason);
      },
    );
  });
  return wss;
}
