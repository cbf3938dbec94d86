export { NatsBus, type NatsBusOptions } from './nats-bus.js';
export { NatsTransport, type NatsTransportOptions } from './nats-transport.js';
export { roomToken } from './subjects.js';
