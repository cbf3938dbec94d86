import { maskUrl } from '@retrotro/bus-core/internal';
import { Client } from 'pg';

/**
 * The connection string as logs and errors show it: password masked, host and port always
 * present (an operator needs both to tell which database was unreachable), resolved the way
 * pg resolves them (default port, PGHOST/PGPORT).
 */
export function describeTarget(connectionString: string): string {
  let host: string;
  let port: number;
  try {
    ({ host, port } = new Client({ connectionString }));
  } catch {
    // pg refuses it too, with its own message at open(); never echo a non-URL string (password=...).
    return isUrl(connectionString) ? maskUrl(connectionString) : 'postgres (unparsable connection string)';
  }
  if (isUrl(connectionString)) {
    try {
      const url = new URL(connectionString);
      if (url.hostname && !url.port) url.port = String(port);
      for (const key of ['password', 'sslpassword']) if (url.searchParams.has(key)) url.searchParams.set(key, '****');
      const shown = maskUrl(url.toString());
      return url.hostname ? shown : `${shown} (${host}:${port})`;
    } catch {
      // not a WHATWG URL (e.g. a socket path in the host part): fall through
    }
  }
  // Not a URL (pg reads it as a database name or socket path): show only where it goes, never the text.
  return `postgres://${host}:${port}`;
}

function isUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/**
 * Refuses what pg would misread: a string that is not a `postgres://` URL (libpq key=value
 * pairs included, which pg does not parse) is taken by pg as a database name on the
 * default host, and the error would then name a host and database nobody asked for.
 */
export function checkConnectionString(connectionString: string): void {
  if (isUrl(connectionString.trim())) return;
  throw new Error(
    'the PostgreSQL connection string must be a postgres:// (or postgresql://) URL, e.g. postgres://user@host:5432/db; ' +
      'put other client settings (ssl, a password function) in clientConfig',
  );
}
