// Exactly-once consumption across processes: two child processes race to consume the same tokens.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { openRelayFolder } from './relay-folder.js';
import { createEnrollmentToken } from './tokens.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TOKENS = fileURLToPath(new URL('./tokens.js', import.meta.url).href.replace(/\.js$/, '.ts'));
const FOLDER = fileURLToPath(new URL('./relay-folder.js', import.meta.url).href.replace(/\.js$/, '.ts'));

// The child: loads the modules, says "ready", waits for "go" on stdin, then consumes every token
// in order and prints one JSON array of results (the facility, or the error code).
const CHILD = `
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
const [tokensTs, folderTs, dir, list] = process.argv.slice(1);
const { consumeEnrollmentToken } = await import(pathToFileURL(tokensTs).href);
const { relayFolder } = await import(pathToFileURL(folderTs).href);
const layout = relayFolder(dir);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('ready\\n');
await lines.next();
const out = [];
for (const token of JSON.parse(list)) {
  try { out.push(await consumeEnrollmentToken(layout, token)); }
  catch (e) { out.push(e?.code ?? String(e)); }
}
process.stdout.write(JSON.stringify(out) + '\\n');
process.exit(0);
`;

interface Child {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly ready: Promise<void>;
  readonly result: Promise<string[]>;
}

function startChild(dir: string, tokens: readonly string[]): Child {
  const proc = spawn(
    process.execPath,
    [
      '--conditions=@accord/source',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      CHILD,
      TOKENS,
      FOLDER,
      dir,
      JSON.stringify(tokens),
    ],
    { cwd: REPO_ROOT, stdio: 'pipe' },
  );
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const ready = lines.next().then((l) => {
    if (l.value !== 'ready') throw new Error(`child did not start: ${stderr}`);
  });
  const result = ready
    .then(() => lines.next())
    .then((l) => {
      if (typeof l.value !== 'string') throw new Error(`child printed no result: ${stderr}`);
      return JSON.parse(l.value) as string[];
    });
  return { proc, ready, result };
}

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-tokens-int-');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('enrollment tokens across processes', () => {
  it(
    'two processes racing on the same tokens: each token is consumed by exactly one',
    { timeout: 60_000 },
    async () => {
      const { layout } = await openRelayFolder(tmp.path);
      const tokens: string[] = [];
      for (let i = 0; i < 24; i++) tokens.push((await createEnrollmentToken(layout, `clinic-${i}`)).token);
      const children = [startChild(tmp.path, tokens), startChild(tmp.path, tokens)];
      try {
        await Promise.all(children.map((c) => c.ready));
        for (const c of children) c.proc.stdin.write('go\n');
        const [a, b] = await Promise.all(children.map((c) => c.result));
        for (const [i] of tokens.entries()) {
          const outcomes = [a![i], b![i]].sort();
          expect(outcomes, `token ${i}`).toEqual([`clinic-${i}`, ErrorCode.RELAY_TOKEN_USED].sort());
        }
      } finally {
        for (const c of children) c.proc.kill();
      }
    },
  );
});
