import { mergeConfig } from 'vitest/config';
import { accordVitestConfig } from '../../vitest.shared.js';

// The browser tests need Debian's chromium: the global set-up installs it when it is missing.
export default mergeConfig(accordVitestConfig({ testTimeout: 60_000 }), {
  test: { globalSetup: ['./vitest.global-setup.ts'] },
});
