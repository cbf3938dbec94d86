import { describeCluster } from './support/suite.js';

describeCluster('postgres');
