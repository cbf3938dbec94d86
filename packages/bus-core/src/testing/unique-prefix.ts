import { MAX_PREFIX_LENGTH, validateBusPrefix } from '../prefix.js';

let prefixCounter = 0;
/**
 * A channel/subject prefix no other run or test shares, valid by `validateBusPrefix`: the
 * label is cut (and anything but letters, digits and `_` replaced) to fit 40 characters.
 */
export function uniquePrefix(label = 'conf'): string {
  const head = `t${process.pid}_${Date.now().toString(36)}_`;
  const tail = `_${prefixCounter++}`;
  const room = Math.max(1, MAX_PREFIX_LENGTH - head.length - tail.length);
  return validateBusPrefix(`${head}${label.replace(/[^A-Za-z0-9_]/g, '_').slice(0, room)}${tail}`);
}
