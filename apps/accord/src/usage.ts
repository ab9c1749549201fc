/** The text of `accord --help`: every command and its flags. */
export const USAGE = `accord — offline-first, event-sourced sync for the tablets of a health facility

Usage:
  accord help                 Show this help (also: accord --help, accord -h, accord)
  accord device init --data DIR --facility ID --name NAME [--roster FILE]
                              Enroll a new device: create its key (DIR/key.json, mode 0600)
                              and device.json, and add it to the roster file
                              (default DIR/roster.json; share one FILE between a facility's devices).
  accord device run --data DIR [--listen PORT] [--peer ws://HOST:PORT ...] [--http PORT]
                    [--listen-host HOST] [--roster FILE]
                              Run a device agent: sync with peers, serve the local HTTP API on
                              127.0.0.1 (PORT 0 = any free port). Prints one JSON line
                              {"event":"ready","device":…,"http":…,"peer":…} when ready.
                              SIGTERM / SIGINT stop it cleanly (exit 0).
  accord demo [--data DIR] [--exit-after-ready]
                              Run a demo facility of three peer-to-peer devices in this process
                              (initialized and seeded with example events on first run; default
                              DIR ./data/demo) and print each device's HTTP URL.

Exit codes: 0 success, 1 operational error (code on stderr), 2 usage error (CLI_USAGE).
`;
