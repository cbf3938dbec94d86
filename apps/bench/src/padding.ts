/**
 * The filler that brings every benchmark event to its size. Not one repeated character:
 * PostgreSQL compresses what it stores (history, large payloads), and `xxxx…` would shrink to
 * almost nothing there, flattering every path that stores. Instead, words drawn from a small
 * vocabulary by a fixed pseudo-random sequence: ASCII (one byte per character, nothing JSON
 * escapes), and about as compressible as the notes people type. BENCH_PADDING=random makes it
 * incompressible instead (base64-like letters: an image or a token someone pasted).
 */
const WORDS =
  'the a to of and in we it for on is that with this was be as at our not are have can next team sprint went well better could improve action item review retro board card vote timer note idea keep stop start more less time meeting release bug test deploy customer feedback'.split(
    ' ',
  );

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const random = process.env.BENCH_PADDING === 'random';

const cache = new Map<number, string>();

/** `length` characters of prose-like filler; the same for the same length. */
export function textPadding(length: number): string {
  const n = Math.max(0, Math.floor(length));
  const cached = cache.get(n);
  if (cached !== undefined) return cached;
  let seed = 0x2545f491;
  let out = '';
  while (out.length < n) {
    // xorshift32: fast, fixed, good enough to make the text not repeat.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    out += random ? BASE64[(seed >>> 0) % 64] : `${WORDS[(seed >>> 0) % WORDS.length]} `;
  }
  const text = out.slice(0, n);
  cache.set(n, text);
  return text;
}
