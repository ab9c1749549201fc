/** The text of `accord --help`: every command and its flags. */
export const USAGE = `accord — offline-first, event-sourced sync for the tablets of a health facility

Usage:
  accord help                 Show this help (also: accord --help, accord -h, accord)
  accord device init --data DIR --name NAME --relay ws://HOST:PORT --relay-id ID [--token TOKEN|-]
                              [--time-zone TZ]
                              Enroll a new device with a relay: create its key (DIR/key.json,
                              mode 0600), prove it to the relay with the one-time TOKEN, and keep
                              the relay-signed facility roster it answers with. --relay-id (printed
                              by accord relay enroll) pins the relay: an answer from any other relay
                              is refused and nothing is written. The token: --token TOKEN, or
                              --token - (stdin), or without --token ACCORD_ENROLL_TOKEN, else stdin
                              (a token on the command line is visible in ps).
  accord device init --data DIR --facility ID --name NAME [--roster FILE] [--time-zone TZ]
                              Without a relay: create the key and device.json and add the device
                              to a roster file (default DIR/roster.json; share one FILE between a
                              facility's devices). --time-zone: the facility's IANA zone (e.g.
                              Africa/Nairobi) for business dates such as the queue's "today"
                              (default UTC).
  accord device run --data DIR [--listen PORT] [--peer ws://HOST:PORT ...] [--http PORT]
                    [--listen-host HOST] [--roster FILE] [--no-relay] [--relay ws://HOST:PORT]
                              Run a device agent: sync with peers (and its relay, unless
                              --no-relay; --relay when the relay moved), serve the local HTTP API on
                              127.0.0.1 (PORT 0 = any free port). Prints one JSON line
                              {"event":"ready","device":…,"http":…,"peer":…} when ready.
                              SIGTERM / SIGINT stop it cleanly (exit 0).
  accord relay --data DIR [--host HOST] [--port PORT] [--dependency-deadline 30s]
               [--await-devices 30s] [--log-level info]
                              Run the relay (default 127.0.0.1:8787; LevelDB under DIR, key created
                              on first start): sync endpoint, POST /enroll, GET /healthz,
                              GET /metrics, admin API under /admin/ (HTTP Basic, user admin).
                              Prints {"event":"ready","relay":…,"port":…}; JSON logs on stderr;
                              SIGTERM drains and stops. After a start that may be a
                              restore, the relay writes nothing until every enrolled device
                              showed it its history, or --await-devices after the first did:
                              start a relay restored from a backup with as long as its tablets
                              may stay away (e.g. 8h).
  accord relay admin-password --data DIR
                              Set the admin password (read from stdin or ACCORD_ADMIN_PASSWORD;
                              stored as a salted scrypt hash).
  accord relay enroll --data DIR --facility ID [--ttl 24h]
                              Print the relay's id on the first line and a one-time, expiring
                              enrollment token alone on the last (works whether or not the relay
                              is running on DIR).
  accord relay revoke --data DIR --device ID
                              Revoke a device; a running relay applies it within a second.
  accord demo [--data DIR] [--port-base P] [--devices N] [--exit-after-ready]
                              Run a demo facility in this process: a relay on port P (default
                              8800) and N devices (default 3, at most 9) whose Sync Centre and API
                              are on P+1..P+N (peers on P+11..P+10+N), enrolled and seeded with
                              example events on first run (a 422 and a 409 among them; default DIR
                              ./data/demo, reused by later runs); prints the URLs and the relay's
                              admin password.
  accord sim [--devices N] [--facilities F] [--events E] [--duration T] [--loss P] [--duplicate P]
            [--reorder P] [--truncate P] [--partitions K] [--offline-days D] [--skew-ms S]
            [--crashes C] [--no-relay] [--no-p2p] [--baseline] [--seed S] [--scenario FILE] [--json]
                              Simulate a facility on a seeded network and clock: Accord's real
                              device logs, and with --baseline the queue-based client on the same
                              seed. The scenario is FILE's (JSON or YAML, see libs/sim) with each
                              flag overriding its field: --devices per facility; --events about E
                              events in all (sets the workload's rate); --duration of simulated time
                              (default 7d; e.g. 36h); per-frame --loss, --duplicate, --reorder and
                              --truncate (0-1); K random --partitions of mean length --offline-days
                              (default 1); random --skew-ms per clock; C random --crashes (10 min
                              down). A table by default (progress on stderr); --json prints one
                              object (converged, convergenceMs, rounds, eventsAppended, eventsLost,
                              duplicates, bytesPerEvent, deadletters, symptoms, seed, …; and
                              "baseline" with the same fields), the same bytes for the same seed.
  accord sim sweep --grid FILE --out DIR [--seeds N] [--jobs J]
                              Run a grid of scenarios × seeds (both systems each) on J processes
                              (default: one per core); writes DIR/runs.jsonl and DIR/summary.csv.
  accord sim report DIR [--out FILE]
                              Write a self-contained HTML page of a sweep's charts (default
                              DIR/report.html), Accord beside the baseline.
  accord sync-centre --url http://127.0.0.1:PORT COMMAND [--json]
                              The Sync Centre of the device agent at PORT (its --http port):
                                status            online, relay, peers, pending, needs attention
                                outbox            this device's events without a verdict, oldest first
                                conflicts         open deadletters, grouped by code, rule and reason
                                inspect ID        an event, its verdict and what resolved it
                                retry ID          retry a deadletter (a RetryRequested event)
                                retry-all         retry every open deadletter
                                discard ID [--reason R]
                                                  discard a deadletter (kept in the audit trail)
                                audit [--limit N] this device's sync and admin actions, newest first
                              resubmit and integrity need the relay's side (not available yet).
                              Tables by default; --json prints the API's JSON. Writes carry an
                              Idempotency-Key (random, or --idempotency-key KEY), so a repeat
                              after a lost answer records nothing twice.

Exit codes: 0 success, 1 operational error (code on stderr), 2 usage error (CLI_USAGE).
`;
