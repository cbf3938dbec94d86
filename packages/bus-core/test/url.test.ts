import { describe, expect, it } from 'vitest';
import { maskUrl } from '../src/url.js';

describe('maskUrl', () => {
  it('masks the password of a postgres URL and keeps user, host, port, database and query', () => {
    const masked = maskUrl('postgres://app:s3cr3t@db.example.com:5432/retro?sslmode=require');
    expect(masked).toBe('postgres://app:****@db.example.com:5432/retro?sslmode=require');
    expect(masked).not.toContain('s3cr3t');
  });

  it('masks each entry of a NATS comma list, with or without scheme', () => {
    expect(maskUrl('nats://a:pw1@h1:4222, nats://h2:4222,b:pw2@h3:4223')).toBe('nats://a:****@h1:4222,nats://h2:4222,b:****@h3:4223');
  });

  it('leaves a URL without a password as it is', () => {
    expect(maskUrl('postgres://postgres@127.0.0.1:5432/postgres')).toBe('postgres://postgres@127.0.0.1:5432/postgres');
    expect(maskUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });

  it('never throws on garbage, and still hides a password in something URL-like', () => {
    expect(maskUrl('not a url at all')).toBe('not a url at all');
    expect(maskUrl('')).toBe('');
    expect(maskUrl(':::')).toBe(':::');
    const broken = maskUrl('postgres://user:hunter2@bad host:5432/db');
    expect(broken).not.toContain('hunter2');
    expect(broken).toContain('user:****@');
  });

  // Regression (url.ts): a raw `#`, `/` or `?` in a password ends the authority early, and
  // the URL parser then saw no password and printed the string as it was.
  it('hides a password holding a raw # / or ?, which the URL parser misreads as a port', () => {
    for (const secret of ['123#x', '12/ab', '77?q=1']) {
      const masked = maskUrl(`postgres://app:${secret}@db.example:5432/retro`);
      expect(masked).not.toContain(secret);
      expect(masked).toBe('postgres://app:****@db.example:5432/retro');
    }
    expect(maskUrl('app:123#x@db:5432')).toBe('app:****@db:5432');
    expect(maskUrl('postgres://app:p@ss@db/retro')).not.toContain('p@ss'); // a raw @ the parser handles
  });

  // Regression (url.ts): NATS token auth puts the token where the user name goes
  // (nats://<token>@host:4222); it is printed in full.
  it('hides a NATS token given as the user part', () => {
    expect(maskUrl('nats://s3cr3t-token@nats.example:4222')).not.toContain('s3cr3t-token');
  });
});
