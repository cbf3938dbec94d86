import { describeCluster } from './support/suite.js';

describeCluster('nats');
