import { describe, expect, it } from 'vitest';
import { MAX_PREFIX_LENGTH, validateBusPrefix } from '../src/index.js';
import { uniquePrefix } from '../src/testing/index.js';

describe('validateBusPrefix', () => {
  it('accepts 1 to 40 letters, digits and underscores, and returns the prefix', () => {
    expect(MAX_PREFIX_LENGTH).toBe(40);
    for (const ok of ['retrotro', 'a', 'team_1', 'A_B_9', '_', 'p'.repeat(40)]) expect(validateBusPrefix(ok)).toBe(ok);
  });

  it('refuses what is not a PostgreSQL identifier part, a NATS subject token or a JetStream stream name', () => {
    for (const bad of ['', 'a-b', 'a.b', 'a b', 'a*', '>', 'é', 'x;DROP', 'tab\there', 'a/b', 'a:b']) {
      expect(() => validateBusPrefix(bad), JSON.stringify(bad)).toThrow(/invalid bus prefix .*1 to 40 letters, digits or underscores/);
    }
  });

  it('refuses more than 40 characters, saying why', () => {
    expect(() => validateBusPrefix('p'.repeat(41))).toThrow(/too long: 41 characters, at most 40 .*63-byte/);
    // The longest channel of the longest prefix fits PostgreSQL's 63 bytes with room to spare.
    expect(`${'p'.repeat(MAX_PREFIX_LENGTH)}_history_rooms`.length).toBeLessThanOrEqual(63);
  });

  it('uniquePrefix (the conformance kit) always follows the rule, however long the label', () => {
    for (const label of ['conf', 'maxpayload', 'a-very-long-label-with-dashes-and-more-than-forty-characters']) {
      const prefix = uniquePrefix(label);
      expect(validateBusPrefix(prefix)).toBe(prefix);
    }
    expect(uniquePrefix('x')).not.toBe(uniquePrefix('x'));
  });
});
