#!/usr/bin/env node
// Type-checks the whole workspace in one process, with each project's own tsconfig files
// (libs/*/tsconfig.{lib,spec}.json, apps/*/…, tools/tsconfig.json) as the only source of truth.
//
// Why not `tsc -p` once per project: a project's program holds the TypeScript sources of every
// workspace library it imports (they resolve to source through the `@accord/source` condition),
// so per project the shared libraries were checked again and again: 18 programs, ≈ 3 min of CPU
// for the workspace. Here the configs with the same compiler options are merged into one program
// (their files united), so each file is still checked under every set of options a project gives
// it, but once per set: five programs, ≈ 40–70 s of CPU.
//
// Usage: node tools/typecheck.mjs  (exit code 1 and TypeScript's diagnostics on any error)
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every leaf tsconfig of the workspace: each project's referenced configs, and tools'. */
function leafConfigs() {
  const out = [join(root, 'tools', 'tsconfig.json')];
  for (const group of ['libs', 'apps']) {
    for (const name of readdirSync(join(root, group))) {
      const solution = join(root, group, name, 'tsconfig.json');
      if (!existsSync(solution)) continue;
      const { config, error } = ts.readConfigFile(solution, ts.sys.readFile);
      if (error) fail([error]);
      const refs = config.references ?? [];
      if (refs.length === 0) out.push(solution);
      for (const ref of refs) out.push(join(dirname(solution), ref.path));
    }
  }
  return out;
}

function fail(diagnostics) {
  const host = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => ts.sys.newLine,
  };
  process.stderr.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
  process.exit(1);
}

/** Configs grouped by their compiler options: one program per distinct set of options. */
const groups = new Map();
for (const path of leafConfigs()) {
  const { config, error } = ts.readConfigFile(path, ts.sys.readFile);
  if (error) fail([error]);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, dirname(path), undefined, path);
  if (parsed.errors.length > 0) fail(parsed.errors);
  const { configFilePath: _path, ...options } = parsed.options;
  const key = JSON.stringify(options, Object.keys(options).sort());
  const group = groups.get(key) ?? { options: parsed.options, files: new Set(), configs: [] };
  for (const file of parsed.fileNames) group.files.add(file);
  group.configs.push(relative(root, path));
  groups.set(key, group);
}

/** Diagnostics by file, position and message: a file checked in several programs reports once. */
const diagnostics = new Map();
for (const { options, files, configs } of groups.values()) {
  const started = performance.now();
  const program = ts.createProgram({ rootNames: [...files], options });
  const found = ts.getPreEmitDiagnostics(program);
  for (const d of found) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    diagnostics.set(`${d.file?.fileName ?? ''}:${d.start ?? ''}:${d.code}:${text}`, d);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `typecheck: ${configs.length} configs, ${files.size} files, ${found.length} errors, ${seconds} s`,
  );
}
if (diagnostics.size > 0) fail([...diagnostics.values()]);
