import { fileURLToPath } from 'node:url';
import { defaultServerConditions, defaultClientConditions } from 'vite';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

/** The custom export condition under which every workspace library exposes its TypeScript source. */
const SOURCE = '@accord/source';

/**
 * Vitest settings shared by every project: source resolution, the fast-check seed
 * set-up, and `src/**` test discovery. A project passes its own overrides.
 */
export function accordVitestConfig(
  overrides: { testTimeout?: number; include?: string[] } = {},
): ViteUserConfig {
  return defineConfig({
    resolve: { conditions: [SOURCE, ...defaultClientConditions] },
    ssr: { resolve: { conditions: [SOURCE, ...defaultServerConditions] } },
    test: {
      include: overrides.include ?? ['src/**/*.test.ts'],
      setupFiles: [fileURLToPath(new URL('./tools/vitest-fc-setup.ts', import.meta.url))],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 60_000,
      // expect.poll waits on other processes (an agent, the relay, a browser): Vitest's default of
      // 1 s failed on a machine at load 20-29 where the same wait took a few seconds.
      expect: { poll: { timeout: 15_000 } },
      pool: 'forks',
      reporters: ['default'],
    },
  });
}
