import { MemoryBroker, MemoryTransport, type Transport } from '../src/index.js';
import { describeTransportConformance } from '../src/testing/conformance-entry.js';

// One broker per prefix, as one channel namespace per prefix on a real broker.
const brokers = new Map<string, MemoryBroker>();
const broker = (prefix: string) => brokers.get(prefix) ?? brokers.set(prefix, new MemoryBroker()).get(prefix)!;

describeTransportConformance('memory (chunking like PostgreSQL)', {
  // A small frame limit so the large-payload test exercises chunking.
  createTransport: (prefix) => new MemoryTransport(broker(prefix), { maxPayloadBytes: 7_999, chunking: true }),
  injectRaw: async (prefix, stream, payload) => broker(prefix).publish(stream, payload),
  sever: async (t: Transport) => {
    const m = t as MemoryTransport;
    m.sever();
    setTimeout(() => m.restore(), 200);
  },
});

describeTransportConformance('memory (no chunking)', {
  createTransport: (prefix) => new MemoryTransport(broker(prefix)),
  injectRaw: async (prefix, stream, payload) => broker(prefix).publish(stream, payload),
  sever: async (t: Transport) => {
    const m = t as MemoryTransport;
    m.sever();
    setTimeout(() => m.restore(), 200);
  },
});
