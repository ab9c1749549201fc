import { mergeConfig } from 'vitest/config';
import { accordVitestConfig } from '../../vitest.shared.js';

// The report's browser test needs Debian's chromium: the global set-up installs it when it is missing.
export default mergeConfig(accordVitestConfig(), {
  test: { globalSetup: ['./vitest.global-setup.ts'] },
});
