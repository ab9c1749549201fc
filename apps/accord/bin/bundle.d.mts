/**
 * Bundles the TypeScript module `entry` into the ESM file `outfile` unless it is up to date;
 * resolves with the absolute path of `outfile`.
 *
 * @remarks Workspace libraries (`@accord/*`) are compiled in from their TypeScript source;
 * every other package stays an external import, resolved from `outfile`'s folder at run time.
 * Writes `outfile`, `outfile.map` and the freshness manifest `outfile.inputs.json` atomically;
 * safe to call concurrently from several processes.
 */
export declare function ensureBundle(entry: string, outfile: string): Promise<string>;

/** The `accord` CLI's bundle (src/main.ts into dist/accord.mjs), as bin/accord.mjs runs it. */
export declare function ensureCliBundle(): Promise<string>;

/**
 * Bundles the browser page `entry` (TSX, Preact) into `outdir` (`app.js`, `app.css`) and copies
 * `html` to `outdir/index.html`, unless they are up to date; resolves with the absolute `outdir`.
 */
export declare function ensurePageBundle(entry: string, html: string, outdir: string): Promise<string>;

/** The Sync Centre page (apps/sync-centre) built into apps/sync-centre/dist/page/; see {@link ensurePageBundle}. */
export declare function ensureSyncCentrePage(): Promise<string>;
