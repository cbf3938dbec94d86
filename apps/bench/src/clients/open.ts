/** Opening senders and receivers of either kind of server (ours or Socket.IO). */
import { SioReceiver, SioSender } from '../sio/client.js';
import { OursReceiver, OursSender, type PeerEndpoint, type Receiver, type Sender } from './peer.js';

export async function openReceiver(endpoint: PeerEndpoint, roomId: string, name: string): Promise<Receiver> {
  return endpoint.kind === 'ours' ? OursReceiver.open(endpoint, roomId, name) : SioReceiver.open(endpoint, roomId);
}

/** `count` receivers, ten at a time. */
export async function openPeerReceivers(endpoint: PeerEndpoint, roomId: string, count: number, label: string): Promise<Receiver[]> {
  const out: Receiver[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) => openReceiver(endpoint, roomId, `${label}${i + j}`));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

export async function openSender(endpoint: PeerEndpoint, roomId: string, eventBytes: number): Promise<Sender> {
  return endpoint.kind === 'ours' ? OursSender.open(endpoint, roomId, eventBytes) : SioSender.open(endpoint, roomId, eventBytes);
}
