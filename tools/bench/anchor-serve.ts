// Child process of the benchmark: the anchor's serving side. Stock automerge-repo 2.5.6 with its own
// NodeWSServerAdapter and NodeFSStorageAdapter, holding one document with the bench's events as
// `ImmutableString` JSON values keyed by event id, built 100 events per change, as the issue that
// set the anchor describes. Nothing of Accord runs here.
// Usage: anchor-serve.ts <dir> <events.ndjson>
// Prints {"event":"ready", port, url, heads, events} once the document is built and saved.
import { readFile } from 'node:fs/promises';
import { ImmutableString, getHeads } from '@automerge/automerge';
import { Repo } from '@automerge/automerge-repo';
import { NodeWSServerAdapter } from '@automerge/automerge-repo-network-websocket';
import { NodeFSStorageAdapter } from '@automerge/automerge-repo-storage-nodefs';
import { WebSocketServer } from 'ws';

/** The anchor document: events by id. */
export interface AnchorDoc {
  events: Record<string, ImmutableString>;
}

const [dir, file] = process.argv.slice(2);
if (dir === undefined || file === undefined) throw new Error('usage: anchor-serve.ts DIR EVENTS.ndjson');
const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise<void>((resolve) => wss.once('listening', resolve));
const repo = new Repo({
  // The adapter's own types name `ws` through a CommonJS import; the server is the same class.
  network: [new NodeWSServerAdapter(wss as unknown as ConstructorParameters<typeof NodeWSServerAdapter>[0])],
  storage: new NodeFSStorageAdapter(dir),
});
const handle = repo.create<AnchorDoc>({ events: {} });
for (let i = 0; i < lines.length; i += 100) {
  handle.change((doc) => {
    for (const line of lines.slice(i, i + 100)) {
      const id = (JSON.parse(line) as { id: string }).id;
      doc.events[id] = new ImmutableString(line);
    }
  });
}
await repo.flush();
const address = wss.address();
if (address === null || typeof address === 'string') throw new Error('anchor server has no port');
console.log(
  JSON.stringify({
    event: 'ready',
    port: address.port,
    url: handle.url,
    heads: getHeads(handle.doc()),
    events: lines.length,
  }),
);
process.stdin.resume();
process.on('SIGTERM', () => {
  void repo.shutdown().then(() => process.exit(0));
});
