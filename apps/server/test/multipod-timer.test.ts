import { describeTimer } from './support/timer-suite.js';

describeTimer('postgres');
describeTimer('nats');
