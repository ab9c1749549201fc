// Bundles a TypeScript entry point into one ESM file with esbuild, on demand: the `accord`
// command, the tests and the benchmark run compiled JavaScript (as a product ships) without
// a build step, and without tsx's loader thread (a second V8 isolate, ~20–25 MB resident)
// inside a long-lived, memory-bound device agent.
//
// Freshness is checked cheaply: next to the bundle, OUTFILE.inputs.json lists every input
// file esbuild read, with its size and mtime; when they all still match (and the bundle is
// the one the manifest describes), nothing is built and esbuild is not even loaded.
// Outputs are written under unique temporary names and renamed into place, so concurrent
// callers (parallel test workers) never see a half-written file.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MANIFEST_VERSION = 1;

// Every bare import except the workspace libraries stays an import: packages load from
// node_modules at run time (native addons, CommonJS, their own assets), and only our
// TypeScript is compiled in. Relative and absolute paths are bundled.
const externalPackages = {
  name: 'accord-external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind === 'entry-point' || args.path.startsWith('@accord/')
        ? undefined
        : { path: args.path, external: true },
    );
  },
};

// The options that shape the output; part of the manifest key, so changing them rebuilds.
const OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Workspace libraries expose their TypeScript source under this export condition.
  conditions: ['@accord/source'],
  // Not minified: stack traces stay readable. A linked source map (no sources inlined)
  // gives TypeScript positions with `node --enable-source-maps`, at no cost otherwise.
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'silent',
  // The bundle is ESM; a bundled module that still calls require() (none today) gets
  // Node's own, resolved from the bundle's folder. __dirname/__filename are not provided:
  // sources must not use them (nor rely on import.meta.url, which becomes the bundle's).
  banner: {
    js: "import { createRequire as __accordCreateRequire } from 'node:module';\nconst require = __accordCreateRequire(import.meta.url);",
  },
};

async function statOrNull(path) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

function sameFile(s, entry) {
  return s !== null && s.size === entry.size && s.mtimeMs === entry.mtimeMs;
}

async function readManifest(path) {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

/** True when `outfile` was built by these options from inputs that have not changed since. */
async function isFresh(outfile, manifestPath, key) {
  const manifest = await readManifest(manifestPath);
  if (manifest === null || manifest.key !== key || !Array.isArray(manifest.inputs)) return false;
  if (!sameFile(await statOrNull(outfile), manifest.output ?? {})) return false;
  const stats = await Promise.all(manifest.inputs.map((i) => statOrNull(i.path)));
  return stats.every((s, n) => sameFile(s, manifest.inputs[n]));
}

/** Writes `data` to `path` through a unique temporary file in the same folder and a rename. */
async function writeAtomically(path, data) {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    const s = await stat(tmp);
    await rename(tmp, path);
    return s;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

// Builds in flight in this process: esbuild's service process is stopped when the last ends,
// so a long-lived agent that had to build on start-up does not keep it around.
let building = 0;

async function rebuild(entry, outfile, manifestPath, key) {
  const esbuild = await import('esbuild');
  building += 1;
  try {
    // Each input's size and mtime just before esbuild reads it.
    const before = new Map();
    const statInputs = {
      name: 'accord-stat-inputs',
      setup(b) {
        b.onLoad({ filter: /.*/ }, async (args) => {
          if (args.namespace === 'file') before.set(args.path, await statOrNull(args.path));
          return undefined;
        });
      },
    };
    const result = await esbuild.build({
      ...OPTIONS,
      entryPoints: [entry],
      outfile,
      absWorkingDir: dirname(entry),
      write: false,
      metafile: true,
      plugins: [externalPackages, statInputs],
    });
    await mkdir(dirname(outfile), { recursive: true });
    // The map first, so a bundle is never in place before its map.
    const files = [...result.outputFiles].sort(
      (a, b) => Number(a.path === outfile) - Number(b.path === outfile),
    );
    let output = null;
    for (const file of files) {
      const s = await writeAtomically(file.path, file.contents);
      if (file.path === outfile) output = s;
    }
    if (output === null) throw new Error(`esbuild wrote no ${outfile}`);
    // Each input's size and mtime as of now; one that changed while it was being read may
    // not be in the bundle as it is now, so it is recorded as stale (the next call builds again).
    const inputs = await Promise.all(
      Object.keys(result.metafile.inputs).map(async (rel) => {
        const path = resolve(dirname(entry), rel);
        const s = await stat(path);
        const read = before.get(path);
        const unchanged = read !== undefined && sameFile(s, read);
        return { path, size: s.size, mtimeMs: unchanged ? s.mtimeMs : -1 };
      }),
    );
    const manifest = { key, output: { size: output.size, mtimeMs: output.mtimeMs }, inputs };
    await writeAtomically(manifestPath, `${JSON.stringify(manifest)}\n`);
  } finally {
    building -= 1;
    if (building === 0) await esbuild.stop();
  }
}

/**
 * Bundles the TypeScript module `entry` into the ESM file `outfile` unless it is up to date;
 * resolves with the absolute path of `outfile`.
 *
 * @remarks Workspace libraries (`@accord/*`) are compiled in from their TypeScript source
 * (`@accord/source` condition); every other package stays an external import, resolved from
 * `outfile`'s folder at run time (keep it inside the repository). Writes `outfile`,
 * `outfile.map` and the freshness manifest `outfile.inputs.json`, each atomically; safe to
 * call concurrently from several processes (each may build; the last rename wins, and all
 * builds of the same inputs are identical). esbuild is loaded only when a build is needed.
 */
export async function ensureBundle(entry, outfile) {
  const entryPath = resolve(entry);
  const outPath = resolve(outfile);
  const manifestPath = `${outPath}.inputs.json`;
  const { version } = createRequire(import.meta.url)('esbuild/package.json');
  const key = JSON.stringify({ v: MANIFEST_VERSION, esbuild: version, entry: entryPath, OPTIONS });
  if (!(await isFresh(outPath, manifestPath, key))) await rebuild(entryPath, outPath, manifestPath, key);
  return outPath;
}

/** The `accord` CLI's bundle (src/main.ts into dist/accord.mjs), as bin/accord.mjs runs it; see {@link ensureBundle}. */
export function ensureCliBundle() {
  return ensureBundle(
    fileURLToPath(new URL('../src/main.ts', import.meta.url)),
    fileURLToPath(new URL('../dist/accord.mjs', import.meta.url)),
  );
}

// The Sync Centre page (apps/sync-centre) for the browser: everything bundled (Preact included,
// no CDN: clinics are offline), minified, one app.js and one app.css beside a copy of index.html.
const PAGE_OPTIONS = {
  bundle: true,
  platform: 'browser',
  format: 'esm',
  // Tablets' browsers of the last few years; nothing newer is needed by the page.
  target: ['chrome100', 'safari15', 'firefox100'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  conditions: ['@accord/source'],
  entryNames: 'app',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'silent',
};

/** True when every file of the page manifest, inputs and outputs, is as it was recorded. */
async function isPageFresh(manifestPath, key) {
  const manifest = await readManifest(manifestPath);
  if (manifest === null || manifest.key !== key || !Array.isArray(manifest.inputs)) return false;
  if (!Array.isArray(manifest.outputs)) return false;
  const files = [...manifest.outputs, ...manifest.inputs];
  const stats = await Promise.all(files.map((f) => statOrNull(f.path)));
  return stats.every((s, n) => sameFile(s, files[n]));
}

async function rebuildPage(entry, html, outdir, manifestPath, key) {
  const esbuild = await import('esbuild');
  building += 1;
  try {
    const htmlBefore = await stat(html);
    const result = await esbuild.build({
      ...PAGE_OPTIONS,
      entryPoints: [entry],
      outdir,
      absWorkingDir: dirname(entry),
      write: false,
      metafile: true,
    });
    await mkdir(outdir, { recursive: true });
    const outputs = [];
    for (const file of result.outputFiles) {
      const s = await writeAtomically(file.path, file.contents);
      outputs.push({ path: file.path, size: s.size, mtimeMs: s.mtimeMs });
    }
    const htmlOut = join(outdir, 'index.html');
    const s = await writeAtomically(htmlOut, await readFile(html));
    outputs.push({ path: htmlOut, size: s.size, mtimeMs: s.mtimeMs });
    const inputs = await Promise.all(
      [...Object.keys(result.metafile.inputs).map((rel) => resolve(dirname(entry), rel))].map(
        async (path) => {
          const st = await stat(path);
          return { path, size: st.size, mtimeMs: st.mtimeMs };
        },
      ),
    );
    const htmlNow = await stat(html);
    inputs.push({
      path: html,
      size: htmlNow.size,
      mtimeMs: sameFile(htmlNow, htmlBefore) ? htmlNow.mtimeMs : -1,
    });
    await writeAtomically(manifestPath, `${JSON.stringify({ key, outputs, inputs })}\n`);
  } finally {
    building -= 1;
    if (building === 0) await esbuild.stop();
  }
}

/**
 * Bundles the browser page `entry` (TSX) into `outdir` (`app.js`, `app.css`) and copies `html` to
 * `outdir/index.html`, unless all of them are up to date; resolves with the absolute `outdir`.
 *
 * @remarks Freshness as {@link ensureBundle}: the sizes and mtimes of every input and output,
 * kept in `outdir/page.inputs.json`.
 */
export async function ensurePageBundle(entry, html, outdir) {
  const entryPath = resolve(entry);
  const outPath = resolve(outdir);
  const htmlPath = resolve(html);
  const manifestPath = join(outPath, 'page.inputs.json');
  const { version } = createRequire(import.meta.url)('esbuild/package.json');
  const key = JSON.stringify({
    v: MANIFEST_VERSION,
    esbuild: version,
    entry: entryPath,
    html: htmlPath,
    PAGE_OPTIONS,
  });
  if (!(await isPageFresh(manifestPath, key))) {
    await rebuildPage(entryPath, htmlPath, outPath, manifestPath, key);
  }
  return outPath;
}

/**
 * The Sync Centre page (apps/sync-centre/src/main.tsx and index.html into apps/sync-centre/dist/page/),
 * as `accord device run` and `accord demo` serve it; see {@link ensurePageBundle}.
 *
 * @remarks Paths are relative to this file's folder; dist/accord.mjs, which compiles this module
 * in, sits at the same depth under apps/accord, so they hold from the bundle too.
 */
export function ensureSyncCentrePage() {
  const page = (p) => fileURLToPath(new URL(`../../sync-centre/${p}`, import.meta.url));
  return ensurePageBundle(page('src/main.tsx'), page('src/index.html'), page('dist/page'));
}
