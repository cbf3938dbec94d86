import { describeBrokerFaults, describeStartupFailures } from './support/faults-suite.js';

describeStartupFailures();
describeBrokerFaults('postgres');
describeBrokerFaults('nats');
