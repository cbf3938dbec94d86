import { describeMultiPod } from './support/multipod-suite.js';

describeMultiPod('postgres');
