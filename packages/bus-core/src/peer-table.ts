/**
 * What this pod knows of every other pod: when it last heard from it, whether it runs our
 * protocol (only those heartbeat, so only those can be declared dead: a Go pod never
 * heartbeats), and the last sequence numbers seen, to spot duplicates and lost messages.
 */
interface Peer {
  lastSeen: number;
  /** Sent anything carrying a `seq` (heartbeat, sync, any envelope of ours): its TTL clock runs. */
  expirable: boolean;
  /** Last sequence number seen on presence/control, and on room frames (a counter of their own). */
  lastSeq?: number;
  lastRoomSeq?: number;
}

export interface Sighting {
  /** We knew nothing of this pod (it started before us, or we had expired it). */
  isNew: boolean;
  /** `duplicate`: already seen, drop it; `gap`: `missed` messages were lost before it. */
  verdict: 'ok' | 'duplicate' | 'gap';
  missed: number;
}

export class PeerTable {
  private readonly peers = new Map<string, Peer>();

  get size(): number {
    return this.peers.size;
  }

  /**
   * Records a message from `podId`. Room frames may legitimately skip numbers (NATS
   * per-room subjects deliver only the rooms we host), so only duplicates are checked
   * there. seq 1 is the first message of a process: a pod restarted under the same id.
   */
  seen(podId: string, seq: number | undefined, counter: 'room' | 'other', now = Date.now()): Sighting {
    let peer = this.peers.get(podId);
    const isNew = !peer;
    if (!peer) this.peers.set(podId, (peer = { lastSeen: now, expirable: false }));
    peer.lastSeen = now;
    if (seq === undefined) return { isNew, verdict: 'ok', missed: 0 }; // Go pods send none
    // Proof that it runs our protocol, hence heartbeats: from now on its silence counts. A pod
    // learnt from its sync answer and killed before its next heartbeat is expired too.
    peer.expirable = true;
    if (counter === 'room') {
      const last = seq === 1 ? undefined : peer.lastRoomSeq;
      if (last !== undefined && seq <= last) return { isNew, verdict: 'duplicate', missed: 0 };
      peer.lastRoomSeq = seq;
      return { isNew, verdict: 'ok', missed: 0 };
    }
    const last = seq === 1 ? undefined : peer.lastSeq;
    if (last !== undefined && seq <= last) return { isNew, verdict: 'duplicate', missed: 0 };
    peer.lastSeq = seq;
    if (last !== undefined && seq !== last + 1) return { isNew, verdict: 'gap', missed: seq - last - 1 };
    return { isNew, verdict: 'ok', missed: 0 };
  }

  /** Records a pod that cannot speak for itself (a Go pod another pod told us about). */
  noteSilent(podId: string, now = Date.now()): void {
    if (!this.peers.has(podId)) this.peers.set(podId, { lastSeen: now, expirable: false });
  }

  /** True for a pod known to run our protocol (it can be expired, and it syncs itself). */
  isExpirable(podId: string): boolean {
    return this.peers.get(podId)?.expirable ?? false;
  }

  /** Pods that never sent a sequence number (Go pods): they are never expired. */
  silentPods(): string[] {
    return [...this.peers].filter(([, p]) => !p.expirable).map(([podId]) => podId);
  }

  /** Pods known to run our protocol. */
  expirablePods(): string[] {
    return [...this.peers].filter(([, p]) => p.expirable).map(([podId]) => podId);
  }

  forget(podId: string): void {
    this.peers.delete(podId);
  }

  /** Moves every pod's last sighting forward by `ms`: the silence was ours, not theirs. */
  credit(ms: number): void {
    for (const peer of this.peers.values()) peer.lastSeen += ms;
  }

  /** Restarts every pod's silence clock (after our own outage). */
  resetClocks(now = Date.now()): void {
    for (const peer of this.peers.values()) peer.lastSeen = now;
  }

  /** Pods running our protocol not heard from since `deadline`, with how long they have been silent. */
  silentSince(deadline: number, now = Date.now()): Array<{ podId: string; silentMs: number }> {
    const out: Array<{ podId: string; silentMs: number }> = [];
    for (const [podId, peer] of this.peers) {
      if (peer.expirable && peer.lastSeen < deadline) out.push({ podId, silentMs: now - peer.lastSeen });
    }
    return out;
  }
}
