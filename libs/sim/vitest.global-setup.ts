// Runs once before the test files: installs Debian's chromium for the report's browser test when it
// is missing (quiet otherwise), as apps/sync-centre's set-up does.
import type { TestProject } from 'vitest/node';
import { ensureChromium } from '../../tools/ensure-chromium.mjs';

export default function setup(project: TestProject): void {
  project.provide('chromium', ensureChromium());
}

declare module 'vitest' {
  export interface ProvidedContext {
    chromium: string;
  }
}
