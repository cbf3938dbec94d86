/**
 * A broker URL safe to print: scheme, user, host and port kept, password replaced.
 * Works for comma-separated lists (NATS) and for strings that are not URLs at all.
 */
export function maskUrl(url: string): string {
  return url
    .split(',')
    .map((part) => {
      const s = part.trim();
      try {
        const u = new URL(s.includes('://') ? s : `x://${s}`);
        if (u.password) u.password = '****';
        // NATS token auth puts the token where a user name would be: nats://<token>@host
        else if (u.username && /^(nats|tls|ws|wss):$/.test(u.protocol)) u.username = '****';
        const shown = u.toString();
        return s.includes('://') ? shown : shown.slice('x://'.length);
      } catch {
        return s.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:****@');
      }
    })
    .join(',');
}
