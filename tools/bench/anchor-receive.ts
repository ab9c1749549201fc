// Child process of the benchmark: the anchor's new client. Stock automerge-repo 2.5.6 with its own
// BrowserWebSocketClientAdapter and no storage; timed from `find` until the document holds the
// serving side's heads (every event), then the events are counted once.
// Usage: anchor-receive.ts <ws-url> <document-url> <heads-json> <total>
// Prints {"event":"done", seconds, events}.
import { getHeads } from '@automerge/automerge';
import { Repo, type AutomergeUrl, type DocHandle } from '@automerge/automerge-repo';
import { BrowserWebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket';
import type { AnchorDoc } from './anchor-serve.js';

const [wsUrl, docUrl, headsJson, totalText] = process.argv.slice(2);
if (wsUrl === undefined || docUrl === undefined || headsJson === undefined || totalText === undefined)
  throw new Error('usage: anchor-receive.ts WS-URL DOC-URL HEADS TOTAL');
const want = (JSON.parse(headsJson) as string[]).sort().join(',');
const repo = new Repo({ network: [new BrowserWebSocketClientAdapter(wsUrl)] });
const start = performance.now();
const handle: DocHandle<AnchorDoc> = await repo.find<AnchorDoc>(docUrl as AutomergeUrl);
const complete = (): boolean => getHeads(handle.doc()).sort().join(',') === want;
if (!complete()) {
  await new Promise<void>((resolve, reject) => {
    const stall = setTimeout(() => reject(new Error('anchor cold sync stalled')), 300_000);
    const check = (): void => {
      if (!complete()) return;
      clearTimeout(stall);
      handle.off('change', check);
      resolve();
    };
    handle.on('change', check);
  });
}
const seconds = (performance.now() - start) / 1000;
const events = Object.keys(handle.doc().events).length;
if (events !== Number(totalText)) throw new Error(`anchor client holds ${events} of ${totalText} events`);
console.log(JSON.stringify({ event: 'done', seconds, events }));
await repo.shutdown();
process.exit(0);
