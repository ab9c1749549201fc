#!/usr/bin/env node
// The `accord` command: runs the TypeScript sources of the CLI through tsx.
import { register } from 'node:module';

register('./source-condition.mjs', import.meta.url);
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
await import('../src/main.ts');
