import { describeHistory } from './support/history-suite.js';

describeHistory('nats');
