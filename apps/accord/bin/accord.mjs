#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=2 --heap-growing-percent=30
// The `accord` command: runs the CLI as one compiled JavaScript file, apps/accord/dist/accord.mjs,
// bundled by esbuild from the TypeScript sources on first use and again whenever a source
// changed (see bundle.mjs). Compiled JavaScript, not a TypeScript loader: tsx's hooks run on
// a second V8 isolate that costs a long-lived device agent ~20–25 MB resident.
// ACCORD_FROM_SOURCE=1 runs the sources through tsx instead (TypeScript stack traces).
// --max-semi-space-size=2 caps V8's young generation at 2 MB per semi-space: a device agent
// is long-lived and memory-bound; measured, it keeps ~40 MB less resident at 100k events
// with no loss of append throughput (see `npm run bench`).
// --heap-growing-percent=30 lets the old generation grow by 30% between full collections instead
// of V8's dynamic factor (up to 4x): an agent's start-up garbage (the store scan of every event)
// is collected as the heap grows instead of staying committed until the memory reducer runs.
// Measured on the bench's 100k-event device opened alone (no peer, 15 s idle): idle RSS
// 189-222 -> 170-177 MB, peak 220-236 -> 193-199 MB; CPU per append at 100k unchanged
// (262-278 us against 272-280 us, two interleaved pairs). --optimize-for-size went lower still
// (147 / 187 MB) but opened 2-3x slower and appended 35-45% slower.
// MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ (glibc's malloc; other C libraries ignore
// them) pin both thresholds at glibc's own starting value, 128 KiB. Left alone, glibc raises them
// each time a large block is freed (up to 32 MB for mmap, 64 MB for trimming), and from then on
// keeps that much freed memory of every thread's arena resident: the start-up scan's LevelDB
// buffers stayed after it, ≈ 40 MB at 100k events, which V8 never sees. Measured on the bench's
// 100k-event device opened alone with its HTTP API and page (no peer, 20 s idle, one run each):
// idle RSS 182 -> 129-132 MB, peak (VmHWM) 200 -> 169-184 MB.
import { pathToFileURL } from 'node:url';

if (process.env.ACCORD_FROM_SOURCE === '1') {
  const { register } = await import('node:module');
  register('./source-condition.mjs', import.meta.url);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  await import('../src/main.ts');
} else {
  const { ensureCliBundle } = await import('./bundle.mjs');
  await import(pathToFileURL(await ensureCliBundle()).href);
}
