/**
 * `.creds` files (user JWT + nkey seed, as written by `nsc`). The file is re-read on every
 * (re)connect, so a rotated file is picked up without a restart; if a later read fails, the
 * last good contents are used. A file that cannot be read or parsed at open() is a
 * TransportConfigError: reported as it is, not as an unreachable broker.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { credsAuthenticator, type Authenticator } from '@nats-io/transport-node';
import { TransportConfigError } from '@retrotro/bus-core/internal';

export async function loadCredentials(path: string): Promise<Authenticator> {
  let last: Uint8Array;
  try {
    last = await readFile(path);
  } catch (e) {
    throw new TransportConfigError(`cannot read NATS credentials file ${path}: ${(e as Error).message}`, { cause: e });
  }
  const auth = credsAuthenticator(() => {
    try {
      last = readFileSync(path);
    } catch {
      // keep the last good contents: a half-finished rotation must not drop the connection
    }
    return last;
  });
  // Parse and sign once now: a malformed file is a configuration error, not an unreachable broker.
  try {
    auth('probe');
  } catch (e) {
    throw new TransportConfigError(`invalid NATS credentials file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return auth;
}
