/**
 * CPU time the whole machine spent (every process: bench, pods, broker, kernel), from
 * /proc/stat. On a saturated 2-core machine this is what bounds throughput: a path that costs
 * the machine twice the CPU per event delivers about half the events.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/stat (USER_HZ: 100 on every Linux build that matters). */
const USER_HZ = 100;

/** Busy CPU seconds since boot, all cores together; undefined where /proc/stat is missing. */
export function machineBusySeconds(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  // cpu  user nice system idle iowait irq softirq steal ...
  const fields = text.slice(0, text.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields;
  return (user + nice + system + irq + softirq) / USER_HZ;
}
