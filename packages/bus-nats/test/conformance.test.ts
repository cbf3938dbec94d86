import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TcpProxy } from '@retrotro/bus-core/testing';
import { describeTransportConformance } from '@retrotro/bus-core/testing/conformance';
import type { Transport } from '@retrotro/bus-core';
import { afterAll, beforeAll } from 'vitest';
import { NatsTransport } from '../src/index.js';
import { SHARED_NATS_URL } from './helpers/nats-server.js';

// Every transport reaches the shared server through its own proxy, so `sever` cuts exactly
// that transport's connection, from outside, as a network failure would.
const sharedPort = Number(new URL(SHARED_NATS_URL).port || 4222);
const proxies = new Map<Transport, TcpProxy>();
let injector: NatsConnection;

beforeAll(async () => {
  injector = await connect({ servers: SHARED_NATS_URL });
});

afterAll(async () => {
  await injector?.close();
  await Promise.all([...proxies.values()].map((p) => p.close()));
});

describeTransportConformance('nats', {
  createTransport: async (prefix) => {
    const proxy = await TcpProxy.start(sharedPort);
    const transport = new NatsTransport({
      servers: `nats://127.0.0.1:${proxy.port}`,
      prefix,
      reconnectTimeWaitMs: 100,
      name: `conformance-${prefix}`,
    });
    proxies.set(transport, proxy);
    return transport;
  },
  injectRaw: async (prefix, stream, payload) => {
    injector.publish(`${prefix}.${stream}`, payload);
    await injector.flush();
  },
  sever: async (transport) => {
    const proxy = proxies.get(transport);
    if (!proxy) throw new Error('transport was not created by this harness');
    proxy.sever(500);
  },
});
