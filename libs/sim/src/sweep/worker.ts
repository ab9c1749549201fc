// The sweep's child process when the simulator runs from its own sources: serves the jobs
// `runSweep` sends (see `serveSweepJobs`) and exits when the channel closes.
import { serveSweepJobs } from './serve.js';

await serveSweepJobs();
process.exit(0);
