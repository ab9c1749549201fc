// bin/bundle.mjs: what `accord`, the tests and the benchmark run is an esbuild bundle of the
// TypeScript sources, rebuilt exactly when an input changed.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBundle, ensurePageBundle } from '../bin/bundle.mjs';
import { BUNDLE, REPO_ROOT } from './test-support.js';

const run = promisify(execFile);
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/accord.mjs', import.meta.url));

interface Manifest {
  readonly inputs: readonly { readonly path: string; readonly size: number; readonly mtimeMs: number }[];
}

// A temporary entry that uses a workspace library (compiled in from its TypeScript source)
// and, through it, an npm package (zod, left external). The folder is inside the repository
// so that both resolve; dist/ is gitignored.
const entrySource = (word: string): string =>
  [
    "import { ErrorCode, type DeviceId } from '@accord/protocol';",
    `const word: string = '${word}';`,
    'const id = "d1" as DeviceId;',
    'console.log(word, id, ErrorCode.PROTOCOL_BAD_FRAME);',
    '',
  ].join('\n');

let dir = '';
beforeAll(async () => {
  await mkdir(DIST, { recursive: true });
  dir = await mkdtemp(join(DIST, 'bundle-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runBundle(path: string): Promise<string> {
  const { stdout } = await run(process.execPath, [path], { cwd: REPO_ROOT });
  return stdout.trim();
}

describe('ensureBundle', () => {
  it('bundles a TypeScript entry with workspace libraries into a runnable file, and rebuilds only on change', async () => {
    const entry = join(dir, 'entry.ts');
    const out = join(dir, 'out', 'entry.mjs');
    await writeFile(entry, entrySource('first'));

    expect(await ensureBundle(entry, out)).toBe(out);
    expect(await runBundle(out)).toBe('first d1 PROTOCOL_BAD_FRAME');
    const manifest = JSON.parse(await readFile(`${out}.inputs.json`, 'utf8')) as Manifest;
    const paths = manifest.inputs.map((i) => i.path);
    expect(paths).toContain(entry);
    expect(paths.some((p) => p.includes('/libs/protocol/src/'))).toBe(true);
    expect(paths.filter((p) => p.includes('node_modules'))).toEqual([]);
    expect(await readFile(out, 'utf8')).toMatch(/from "zod"/);
    const built = await stat(out);

    // Unchanged inputs: nothing is written.
    await ensureBundle(entry, out);
    expect((await stat(out)).mtimeMs).toBe(built.mtimeMs);

    // Same content, newer mtime: rebuilt.
    const later = new Date(built.mtimeMs + 5_000);
    await utimes(entry, later, later);
    await ensureBundle(entry, out);
    const touched = await stat(out);
    expect(touched.mtimeMs).not.toBe(built.mtimeMs);

    // New content: rebuilt, and the bundle runs the new code.
    await writeFile(entry, entrySource('second'));
    await ensureBundle(entry, out);
    expect((await stat(out)).mtimeMs).not.toBe(touched.mtimeMs);
    expect(await runBundle(out)).toBe('second d1 PROTOCOL_BAD_FRAME');
  });

  it('rejects a source that does not compile and builds once it is fixed', async () => {
    const entry = join(dir, 'broken.ts');
    const out = join(dir, 'broken.mjs');
    await writeFile(entry, entrySource('ok'));
    await ensureBundle(entry, out);
    await writeFile(entry, 'const = ;\n');
    await expect(ensureBundle(entry, out)).rejects.toThrow(/broken\.ts/);
    await writeFile(entry, entrySource('fixed'));
    await ensureBundle(entry, out);
    expect(await runBundle(out)).toBe('fixed d1 PROTOCOL_BAD_FRAME');
  });

  it('lets concurrent callers build the same bundle', async () => {
    const entry = join(dir, 'concurrent.ts');
    const out = join(dir, 'concurrent.mjs');
    await writeFile(entry, entrySource('both'));
    const paths = await Promise.all([ensureBundle(entry, out), ensureBundle(entry, out)]);
    expect(paths).toEqual([out, out]);
    expect(await runBundle(out)).toBe('both d1 PROTOCOL_BAD_FRAME');
    const manifest = JSON.parse(await readFile(`${out}.inputs.json`, 'utf8')) as Manifest;
    expect(manifest.inputs.map((i) => i.path)).toContain(entry);
  });
});

describe('ensurePageBundle', () => {
  it('bundles a browser page (Preact and CSS included) beside its HTML, and rebuilds only on change', async () => {
    const page = join(dir, 'page');
    await mkdir(page, { recursive: true });
    const entry = join(page, 'main.tsx');
    const css = join(page, 'style.css');
    const html = join(page, 'index.html');
    const out = join(page, 'out');
    await writeFile(css, 'p { color: blue; }\n');
    await writeFile(html, '<!doctype html><title>t</title>\n');
    await writeFile(
      entry,
      "import { render } from 'preact';\nimport './style.css';\nrender(<p>page text</p>, document.body);\n",
    );
    expect(await ensurePageBundle(entry, html, out)).toBe(out);
    const js = await readFile(join(out, 'app.js'), 'utf8');
    expect(js).toContain('page text');
    // Preact is compiled in: the page makes no request for a package.
    expect(js).not.toMatch(/from\s*["']preact/);
    expect(await readFile(join(out, 'app.css'), 'utf8')).toMatch(/color:\s*(blue|#00f)/);
    expect(await readFile(join(out, 'index.html'), 'utf8')).toBe('<!doctype html><title>t</title>\n');
    const built = await stat(join(out, 'app.js'));

    await ensurePageBundle(entry, html, out);
    expect((await stat(join(out, 'app.js'))).mtimeMs).toBe(built.mtimeMs);

    await writeFile(css, 'p { color: red; }\n');
    await ensurePageBundle(entry, html, out);
    expect(await readFile(join(out, 'app.css'), 'utf8')).toMatch(/color:\s*red/);

    await writeFile(html, '<!doctype html><title>new</title>\n');
    await ensurePageBundle(entry, html, out);
    expect(await readFile(join(out, 'index.html'), 'utf8')).toContain('<title>new</title>');
  });
});

describe('bin/accord.mjs', () => {
  it('runs the CLI bundle, or the TypeScript sources with ACCORD_FROM_SOURCE=1', async () => {
    expect(BUNDLE).toBe(join(DIST, 'accord.mjs'));
    const bundled = await run(process.execPath, [BIN, '--help'], { cwd: REPO_ROOT });
    expect(bundled.stdout).toMatch(/^Usage:/m);
    const source = await run(process.execPath, [BIN, '--help'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ACCORD_FROM_SOURCE: '1' },
    });
    expect(source.stdout).toBe(bundled.stdout);
  });

  it('runs as an executable with the agent V8 flags and malloc settings (its shebang)', async () => {
    // What the process was started with, printed before the CLI runs (NODE_OPTIONS' --import).
    const report =
      'console.log(JSON.stringify({trim:process.env.MALLOC_TRIM_THRESHOLD_,mmap:process.env.MALLOC_MMAP_THRESHOLD_,argv:process.execArgv}))';
    const { stdout } = await run(BIN, ['--help'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: `--import=data:text/javascript,${report}` },
    });
    const started = JSON.parse(stdout.split('\n')[0]!) as { trim: string; mmap: string; argv: string[] };
    expect(started).toEqual({
      trim: '131072',
      mmap: '131072',
      argv: ['--max-semi-space-size=2', '--heap-growing-percent=30'],
    });
    expect(stdout).toMatch(/^Usage:/m);
  });
});
