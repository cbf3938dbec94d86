/**
 * The wire format of cluster messages: one line of header, then the message as JSON.
 *
 *   s1 <nodeId> <target> <namespace> <j|b>\n<json>
 *
 * - `nodeId`: the sending process's link (one per Socket.IO server), so a node drops its own
 *   echoes with one `startsWith` before parsing anything;
 * - `target`: `*` for a message to every node, or the requesting adapter's uid for a response,
 *   so other nodes drop responses that are not theirs without parsing them;
 * - `namespace`: `encodeURIComponent` of the namespace name (no space, no newline);
 * - `j`: plain JSON; `b`: JSON in which binary values (Buffer, ArrayBuffer, typed arrays,
 *   DataView) were replaced by `{"\u0000b": "<base64>"}`, turned back into Buffers on receipt.
 *
 * JSON with tagged base64 buffers was measured against MessagePack as base64 text (the payload
 * must be text for NOTIFY): for a 200-byte emit it encodes in ~1.8 µs and decodes in ~1.6 µs
 * against ~3.7 µs and ~3.0 µs (Node 20), and a 20 KB text message stays 20 KB instead of
 * 27 KB (no base64 of the whole message): fewer NOTIFY frames under PostgreSQL's 8000-byte
 * limit. Binary values cost base64 either way.
 */

export const MESSAGE_MAGIC = 's1 ';
export const BROADCAST_TARGET = '*';
/** The key of a binary value's tag. A NUL character never appears in an application's key by accident. */
const BINARY_KEY = '\u0000b';
/** Longest header line accepted (node id, uid, encoded namespace). */
const MAX_HEADER = 1024;

const isBinary = (v: object): v is ArrayBuffer | ArrayBufferView => v instanceof ArrayBuffer || ArrayBuffer.isView(v);

/** True if the value holds binary data anywhere (Socket.IO's own rule, `toJSON` included). */
export function hasBinary(value: unknown, viaToJson = false): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (isBinary(value)) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (hasBinary(item)) return true;
    return false;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !viaToJson) return hasBinary(toJSON.call(value), true);
  for (const key in value) {
    if (Object.hasOwn(value, key) && hasBinary((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

function toBuffer(v: ArrayBuffer | ArrayBufferView): Buffer {
  return v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A copy of `value` with every binary value replaced by its tag (only called when `hasBinary`). */
function tagBinary(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (isBinary(value)) return { [BINARY_KEY]: toBuffer(value).toString('base64') };
  if (Array.isArray(value)) return value.map(tagBinary);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    const plain: unknown = toJSON.call(value);
    return hasBinary(plain, true) ? tagBinary(plain) : plain;
  }
  const out: Record<string, unknown> = {};
  for (const key in value) if (Object.hasOwn(value, key)) out[key] = tagBinary((value as Record<string, unknown>)[key]);
  return out;
}

/** Turns tags back into Buffers, in place. */
function untagBinary(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = untagBinary(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  const tag = record[BINARY_KEY];
  if (typeof tag === 'string') return Buffer.from(tag, 'base64');
  for (const key in record) record[key] = untagBinary(record[key]);
  return value;
}

/** `s1 <nodeId> <target> <namespace> ` : everything of the header but the body kind. */
export function headerOf(nodeId: string, target: string, namespaceToken: string): string {
  return `${MESSAGE_MAGIC}${nodeId} ${target} ${namespaceToken} `;
}

export function namespaceToken(name: string): string {
  return encodeURIComponent(name);
}

/** The whole payload for one message. Throws what JSON.stringify throws (a cycle, a BigInt). */
export function encodeMessage(header: string, message: unknown): string {
  if (hasBinary(message)) return `${header}b\n${JSON.stringify(tagBinary(message))}`;
  return `${header}j\n${JSON.stringify(message)}`;
}

export interface DecodedHeader {
  nodeId: string;
  target: string;
  namespace: string;
  binary: boolean;
  /** Where the JSON starts. */
  bodyStart: number;
}

/** Parses the header line; undefined if it is not one of ours or is malformed. */
export function parseHeader(payload: string): DecodedHeader | undefined {
  if (!payload.startsWith(MESSAGE_MAGIC)) return undefined;
  const nl = payload.indexOf('\n');
  if (nl < 0 || nl > MAX_HEADER) return undefined;
  const parts = payload.slice(MESSAGE_MAGIC.length, nl).split(' ');
  if (parts.length !== 4) return undefined;
  const [nodeId, target, token, kind] = parts as [string, string, string, string];
  if (!nodeId || !target || (kind !== 'j' && kind !== 'b')) return undefined;
  let namespace: string;
  try {
    namespace = decodeURIComponent(token);
  } catch {
    return undefined;
  }
  return { nodeId, target, namespace, binary: kind === 'b', bodyStart: nl + 1 };
}

/** The message body; throws on invalid JSON. */
export function decodeBody(payload: string, header: DecodedHeader): unknown {
  const value: unknown = JSON.parse(payload.slice(header.bodyStart));
  return header.binary ? untagBinary(value) : value;
}
