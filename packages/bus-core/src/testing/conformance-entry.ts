/** The transport conformance suite (needs vitest): `import { describeTransportConformance } from '@retrotro/bus-core/testing/conformance'`. */
export { describeTransportConformance, type ConformanceHarness } from './conformance.js';
