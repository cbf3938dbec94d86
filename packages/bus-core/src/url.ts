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
        // A raw `#`, `/` or `?` in a password ends the authority early, so the URL parser
        // sees no password at all (`app:123#x@db` reads as host `app`, port 123): mask by hand.
        else if (userinfoWithPassword(s).test(s)) return maskByHand(s);
        // NATS token auth puts the token where a user name would be: nats://<token>@host
        else if (u.username && /^(nats|tls|ws|wss):$/.test(u.protocol)) u.username = '****';
        const shown = u.toString();
        return s.includes('://') ? shown : shown.slice('x://'.length);
      } catch {
        return maskByHand(s);
      }
    })
    .join(',');
}

/** `scheme://user:` (or `user:` when there is no scheme) followed, somewhere later, by an `@`. */
const WITH_SCHEME = /^([a-z][\w+.-]*:\/\/[^:/?#@\s]*):.*@/i;
const WITHOUT_SCHEME = /^([^:/?#@\s]*):.*@/;
const userinfoWithPassword = (s: string) => (s.includes('://') ? WITH_SCHEME : WITHOUT_SCHEME);

/** Everything between `user:` and the last `@` goes: too much rather than a secret. */
function maskByHand(s: string): string {
  return s.replace(userinfoWithPassword(s), '$1:****@');
}
