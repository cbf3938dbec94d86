/**
 * The one rule for a bus prefix (BUS_PREFIX), shared by every transport and application.
 * The prefix names PostgreSQL channels and tables (`<prefix>_presence`, `<prefix>_history_rooms`),
 * NATS subjects (`<prefix>.room`) and JetStream streams, so it must be valid in all of them:
 * letters, digits and underscores, 1 to 40 characters. 40 leaves room for suffixes under
 * PostgreSQL's 63-byte identifier limit; no `.`, `*`, `>`, `-` or whitespace keeps it one
 * subject token and a valid stream name.
 */
export const MAX_PREFIX_LENGTH = 40;

const PREFIX = /^[A-Za-z0-9_]+$/;

/** Returns `prefix` if it follows the rule; otherwise throws an Error saying what is wrong. */
export function validateBusPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new Error(
      `invalid bus prefix ${JSON.stringify(prefix)}: use 1 to ${MAX_PREFIX_LENGTH} letters, digits or underscores ` +
        `(it names PostgreSQL channels and tables, NATS subjects and JetStream streams)`,
    );
  }
  if (prefix.length > MAX_PREFIX_LENGTH) {
    throw new Error(
      `bus prefix ${JSON.stringify(prefix)} is too long: ${prefix.length} characters, at most ${MAX_PREFIX_LENGTH} ` +
        `(suffixes such as "_presence" must fit in PostgreSQL's 63-byte names)`,
    );
  }
  return prefix;
}
