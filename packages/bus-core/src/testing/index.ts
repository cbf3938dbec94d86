/** Test kit for transports and apps: `import { describeTransportConformance } from '@retrotro/bus-core/testing'`. */
export { describeTransportConformance, uniquePrefix, type ConformanceHarness } from './conformance.js';
export { RecordingHub, waitFor, sleep, type Delivery } from './recording-hub.js';
export { TcpProxy } from './tcp-proxy.js';
