export { runCli, type CliIo } from './cli.js';
export { runDemo, DEMO_DEVICES, DEMO_FACILITY, type DemoOptions } from './demo.js';
export { USAGE } from './usage.js';
