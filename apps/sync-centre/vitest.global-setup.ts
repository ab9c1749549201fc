// Runs once before the test files: installs chromium when missing (quiet otherwise) and builds the
// page bundle once, so test files in parallel neither race apt-get nor build the page twice.
import type { TestProject } from 'vitest/node';
import { ensureChromium } from '../../tools/ensure-chromium.mjs';
import { ensureSyncCentrePage } from '../accord/bin/bundle.mjs';

export default async function setup(project: TestProject): Promise<void> {
  project.provide('chromium', ensureChromium());
  await ensureSyncCentrePage();
}

declare module 'vitest' {
  export interface ProvidedContext {
    chromium: string;
  }
}
