/**
 * Client tokens (CONTRACT section 3): HS256 JWTs, user id in `sub` (or `user_id`), name in
 * `name`, optional `rooms` allow-list. In dev mode (no JWT_SECRET) tokens are signed with a
 * fixed, public secret so a token minted on one pod works on every pod.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

export const DEV_SECRET = 'retrotro-dev-secret-NOT-FOR-PRODUCTION';

export interface Identity {
  userId: string;
  userName: string;
  /** Rooms this token may join; undefined: any room. */
  rooms: string[] | undefined;
  /** Expiry in epoch milliseconds, if the token has one. */
  expiresAt: number | undefined;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

export class Authenticator {
  private readonly key: Uint8Array;

  constructor(secret: string | undefined) {
    this.key = new TextEncoder().encode(secret ?? DEV_SECRET);
  }

  async verify(token: string | undefined): Promise<Identity> {
    if (!token) throw new AuthError('missing token');
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, this.key, { algorithms: ['HS256'] }));
    } catch (e) {
      throw new AuthError(`invalid token: ${(e as Error).message}`);
    }
    const userId = typeof claims.sub === 'string' && claims.sub ? claims.sub : claims.user_id;
    if (typeof userId !== 'string' || !userId) throw new AuthError('token has no sub or user_id');
    const name = typeof claims.name === 'string' && claims.name ? claims.name : userId;
    const rooms = claims.rooms;
    if (rooms !== undefined && (!Array.isArray(rooms) || !rooms.every((r) => typeof r === 'string'))) {
      throw new AuthError('rooms claim must be an array of room ids');
    }
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
    return { userId, userName: name.slice(0, 128), rooms: rooms as string[] | undefined, expiresAt: exp };
  }

  /** Signs a token for a fresh user (the dev-mode `/dev/token` route, and tests). */
  async issue(name: string, options: { userId?: string; rooms?: string[]; ttlSeconds?: number } = {}): Promise<string> {
    const jwt = new SignJWT({ name, ...(options.rooms ? { rooms: options.rooms } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(options.userId ?? randomUUID())
      .setIssuedAt();
    if (options.ttlSeconds !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds);
    return jwt.sign(this.key);
  }
}

/** Token from `?token=` or `Authorization: Bearer`. */
export function tokenFromRequest(url: URL, authorization: string | undefined): string | undefined {
  const q = url.searchParams.get('token');
  if (q) return q;
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  return m?.[1]?.trim();
}
