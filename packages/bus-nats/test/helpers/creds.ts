/**
 * A minimal decentralised-auth setup (operator -> account -> user), signed here with nkeys,
 * so a test-owned nats-server can check a real `.creds` file. What `nsc` would write.
 */
import { createHash } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

function sign(issuer: KeyPair, subject: string, name: string, nats: object): string {
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url');
  const head = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${head}.${b64url(issuer.sign(Buffer.from(head)))}`;
}

const unlimited = { subs: -1, data: -1, payload: -1 };

export interface AuthSetup {
  /** nats-server configuration text (operator mode, in-memory resolver). */
  serverConfig: string;
  /** Contents of a valid `.creds` file for a user of the account. */
  userCreds: string;
  /** A well-formed `.creds` file of a user signed by an account the server does not know. */
  strangerCreds: string;
}

export function credsFile(jwt: string, seed: string): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    seed,
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

export function makeAuthSetup(): AuthSetup {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const operatorJwt = sign(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const accountJwt = sign(operator, account.getPublicKey(), 'test-account', {
    type: 'account',
    limits: { ...unlimited, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
  });
  const user = nkeys.createUser();
  const userJwt = sign(account, user.getPublicKey(), 'test-user', { type: 'user', pub: {}, sub: {}, ...unlimited });

  const otherAccount = nkeys.createAccount();
  const stranger = nkeys.createUser();
  const strangerJwt = sign(otherAccount, stranger.getPublicKey(), 'stranger', { type: 'user', pub: {}, sub: {}, ...unlimited });

  return {
    serverConfig: [`operator: "${operatorJwt}"`, 'resolver: MEMORY', `resolver_preload: { ${account.getPublicKey()}: "${accountJwt}" }`].join('\n'),
    userCreds: credsFile(userJwt, text(user.getSeed())),
    strangerCreds: credsFile(strangerJwt, text(stranger.getSeed())),
  };
}
