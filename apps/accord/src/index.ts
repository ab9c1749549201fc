export { runCli, type CliIo } from './cli.js';
export {
  runDemo,
  demoPorts,
  DEMO_ADMIN_PASSWORD_FILE,
  DEMO_DEFAULT_DEVICES,
  DEMO_DEVICES,
  DEMO_FACILITY,
  DEMO_MAX_DEVICES,
  DEMO_MIN_DEVICES,
  DEMO_PORT_BASE,
  type DemoOptions,
  type DemoPorts,
} from './demo.js';
export { USAGE } from './usage.js';
