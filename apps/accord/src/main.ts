// Entry point of the `accord` command (run through bin/accord.mjs or tsx).
import { runCli, type CliIo } from './cli.js';

/** One line from stdin; on a terminal, typed without echo. */
function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let line = '';
    const tty = stdin.isTTY;
    if (tty) {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
    }
    stdin.setEncoding('utf8');
    const done = (): void => {
      stdin.off('data', onData);
      stdin.off('end', done);
      if (tty) {
        stdin.setRawMode(false);
        process.stderr.write('\n');
      }
      stdin.pause();
      resolve(line);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\u0003') return reject(new Error('interrupted'));
        if (ch === '\n' || ch === '\r') return done();
        if (ch === '\u007f') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on('data', onData);
    stdin.on('end', done);
    stdin.resume();
  });
}

const io: CliIo = {
  out: (line) => process.stdout.write(line.endsWith('\n') ? line : line + '\n'),
  err: (line) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
  readSecret: (prompt) => readSecret(prompt),
  ...(process.stderr.isTTY ? { progress: (text: string) => void process.stderr.write(text) } : {}),
  stopSignal: () =>
    new Promise<string>((resolve) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) {
          // A second signal while stopping: the user insists.
          process.stderr.write(`accord: ${signal} again: exiting now\n`);
          process.exit(130);
        }
        stopping = true;
        resolve(signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }),
};

// A stray rejection in a library timer must not take a running device down (P7); it is
// reported. An uncaught exception leaves unknown state behind: report it and exit 1
// (acknowledged events are durable, so a restart loses nothing).
process.on('unhandledRejection', (reason) => {
  process.stderr.write(
    `accord: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`,
  );
});
process.on('uncaughtException', (error) => {
  process.stderr.write(`accord: uncaught exception: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

const code = await runCli(process.argv.slice(2), io);
// Everything is flushed and closed by now; exit even if a library left a timer behind.
process.exit(code);
