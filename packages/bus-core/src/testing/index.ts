/**
 * Test tools for transports and applications, without a test runner:
 * `import { RecordingHub, waitFor, TcpProxy } from '@retrotro/bus-core/testing'`.
 * The conformance suite (needs vitest) is `@retrotro/bus-core/testing/conformance`.
 */
export { uniquePrefix } from './unique-prefix.js';
export { RecordingHub, waitFor, sleep, type Delivery } from './recording-hub.js';
export { TcpProxy } from './tcp-proxy.js';
