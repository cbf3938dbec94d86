import type { StreamKind } from './types.js';

type PerStream = Record<StreamKind, number>;
const perStream = (): PerStream => ({ room: 0, presence: 0, control: 0, chunk: 0 });

/** Plain counters, cheap to bump on the hot path; exporters (Prometheus, logs) read them. */
export class BusStats {
  readonly published = perStream();
  /** Envelopes from other pods that were acted upon. */
  readonly received = perStream();
  readonly malformed = perStream();
  /** Our own envelopes coming back from the broker (dropped). */
  ownEchoes = 0;
  /** Valid envelopes with an action or kind this pod does not know (skipped). */
  ignored = 0;
  publishFailures = 0;
  /** Messages that had to be split into chunk frames. */
  chunkedMessages = 0;
  /** Times a pod's sequence numbers skipped (messages lost in between). */
  gaps = 0;
  /** Transport reconnections after a lost connection. */
  reconnects = 0;
  /** Pods declared dead after PRESENCE_TTL_MS of silence. */
  podsExpired = 0;
  /** Events stored in history (acknowledged by the store), retries recognised, failures. */
  historyWrites = 0;
  historyDuplicates = 0;
  historyFailures = 0;
  /** Heartbeats from another process using this pod's id (a misconfiguration). */
  podIdConflicts = 0;
}
