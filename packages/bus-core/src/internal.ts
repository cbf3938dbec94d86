/**
 * For transport authors: `import { TransportLifecycle } from '@retrotro/bus-core/internal'`.
 * Building blocks a broker adapter needs and an application does not; less stable than `.`.
 */
export {
  TransportLifecycle,
  TransportConfigError,
  describeError,
  type TransportDriver,
  type TransportLifecycleOptions,
  type TransportLifecycleState,
} from './transport-lifecycle.js';
