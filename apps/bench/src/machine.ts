/**
 * CPU time the whole machine spent (every process: bench, pods, broker, kernel), from
 * /proc/stat. On a saturated 2-core machine this is what bounds throughput: a path that costs
 * the machine twice the CPU per event delivers about half the events.
 */
import { readdirSync, readFileSync } from 'node:fs';

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

/** CPU seconds used so far by every process whose command name is `comm` (e.g. postgres, nats-server). */
export function processCpuSeconds(comm: string): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid ... utime is field 14, stime 15; comm may hold spaces, so cut at ')'.
    const close = stat.lastIndexOf(')');
    if (stat.slice(stat.indexOf('(') + 1, close) !== comm) continue;
    const rest = stat.slice(close + 2).split(' ');
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return ticks / USER_HZ;
}

/** Per-event CPU (µs) of the whole machine, the brokers' processes and this bench process. */
export interface CpuBudget {
  machine: number;
  broker: number;
  bench: number;
}

const BROKER_COMMANDS = ['postgres', 'nats-server'];

function snapshot() {
  const machine = machineBusySeconds();
  const brokers = BROKER_COMMANDS.map(processCpuSeconds);
  const own = process.cpuUsage();
  if (machine === undefined || brokers.some((b) => b === undefined)) return undefined;
  return { machine, broker: brokers.reduce((a, b) => a! + b!, 0)!, bench: (own.user + own.system) / 1e6 };
}

/** Runs `run` and reports what it cost the machine per event (`events` read from its result). */
export async function withCpuBudget<T>(run: () => Promise<T>, events: (result: T) => number): Promise<{ result: T; budget?: CpuBudget }> {
  const before = snapshot();
  const result = await run();
  const after = snapshot();
  if (!before || !after) return { result };
  const per = (a: number, b: number) => ((b - a) * 1e6) / Math.max(1, events(result));
  return {
    result,
    budget: { machine: per(before.machine, after.machine), broker: per(before.broker, after.broker), bench: per(before.bench, after.bench) },
  };
}
