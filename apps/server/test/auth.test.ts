import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError, Authenticator, DEV_SECRET, tokenFromRequest } from '../src/auth.js';

const key = (s: string) => new TextEncoder().encode(s);

describe('Authenticator', () => {
  const auth = new Authenticator('secret');

  it('round-trips an issued token', async () => {
    const token = await auth.issue('Alice', { userId: 'u1', rooms: ['r1'], ttlSeconds: 60 });
    const id = await auth.verify(token);
    expect(id).toMatchObject({ userId: 'u1', userName: 'Alice', rooms: ['r1'] });
    expect(id.expiresAt).toBeGreaterThan(Date.now());
  });

  it('accepts user_id instead of sub, and falls back to the id for a missing name', async () => {
    const token = await new SignJWT({ user_id: 'u2' }).setProtectedHeader({ alg: 'HS256' }).sign(key('secret'));
    expect(await auth.verify(token)).toMatchObject({ userId: 'u2', userName: 'u2', rooms: undefined });
  });

  it('rejects missing, malformed, badly signed, expired and id-less tokens', async () => {
    await expect(auth.verify(undefined)).rejects.toThrow(AuthError);
    await expect(auth.verify('abc')).rejects.toThrow(AuthError);
    await expect(auth.verify(await new Authenticator('other').issue('x'))).rejects.toThrow(AuthError);
    await expect(auth.verify(await auth.issue('x', { ttlSeconds: -5 }))).rejects.toThrow(/exp/);
    const noId = await new SignJWT({ name: 'n' }).setProtectedHeader({ alg: 'HS256' }).sign(key('secret'));
    await expect(auth.verify(noId)).rejects.toThrow(/sub or user_id/);
    const badRooms = await new SignJWT({ rooms: 'r1' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').sign(key('secret'));
    await expect(auth.verify(badRooms)).rejects.toThrow(/rooms/);
  });

  it('refuses tokens with another algorithm', async () => {
    const hs512 = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('u').sign(key('secret'));
    await expect(auth.verify(hs512)).rejects.toThrow(AuthError);
  });

  it('dev mode signs with the shared dev secret so every pod accepts the token', async () => {
    const token = await new Authenticator(undefined).issue('dev');
    expect((await new Authenticator(DEV_SECRET).verify(token)).userName).toBe('dev');
  });
});

describe('tokenFromRequest', () => {
  it('reads the query string first, then the Bearer header', () => {
    expect(tokenFromRequest(new URL('http://h/ws?token=q'), 'Bearer h')).toBe('q');
    expect(tokenFromRequest(new URL('http://h/ws'), 'Bearer h')).toBe('h');
    expect(tokenFromRequest(new URL('http://h/ws'), 'Basic h')).toBeUndefined();
    expect(tokenFromRequest(new URL('http://h/ws'), undefined)).toBeUndefined();
  });
});
