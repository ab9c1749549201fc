// Flat ESLint config: typed typescript-eslint rules, Prettier compatibility, and the
// module boundaries of DESIGN.md §5 / STYLE.md enforced through Nx project tags.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const PURE = ['ws', 'level', 'classic-level', 'node:*'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', '**/coverage/**', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          // The bench builds the CLI's bundle the way `accord` does (a tool, not a library import).
          allow: ['../../apps/accord/bin/bundle.mjs'],
          depConstraints: [
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util'] },
            { sourceTag: 'type:protocol', onlyDependOnLibsWithTags: ['type:util', 'type:protocol'] },
            {
              sourceTag: 'type:domain',
              onlyDependOnLibsWithTags: ['type:util', 'type:protocol', 'type:domain'],
            },
            {
              sourceTag: 'type:port',
              onlyDependOnLibsWithTags: ['type:util', 'type:protocol', 'type:domain', 'type:port'],
            },
            {
              sourceTag: 'type:adapter',
              onlyDependOnLibsWithTags: [
                'type:util',
                'type:protocol',
                'type:domain',
                'type:port',
                'type:adapter',
              ],
            },
            {
              sourceTag: 'type:testing',
              onlyDependOnLibsWithTags: [
                'type:util',
                'type:protocol',
                'type:domain',
                'type:port',
                'type:adapter',
                'type:testing',
              ],
            },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: '*', notDependOnLibsWithTags: ['type:app'] },
          ],
        },
      ],
    },
  },
  {
    // Pure libraries: no I/O. They may use globalThis.crypto (WebCrypto) and TextEncoder.
    files: ['libs/protocol/src/**/*.ts', 'libs/domain/src/**/*.ts', 'libs/rules/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: PURE.map((group) => ({
            group: [group],
            message: 'pure library: no I/O imports (DESIGN.md §5)',
          })),
        },
      ],
    },
  },
  {
    // Tests (and the ./testing entry points) may use the test kit; production code may not.
    files: ['**/*.test.ts', '**/src/testing.ts', '**/src/testing/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          depConstraints: [
            {
              sourceTag: '*',
              onlyDependOnLibsWithTags: [
                'type:util',
                'type:protocol',
                'type:domain',
                'type:port',
                'type:adapter',
                'type:testing',
              ],
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  prettier,
);
