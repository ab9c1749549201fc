import * as A from '@automerge/automerge';
import type { DocumentId, Repo } from '@automerge/automerge-repo';

/** What {@link onPeerSync} reports for one sync message received from a peer. */
export interface PeerSyncReport {
  /** The peer's id (a device id). */
  readonly peer: string;
  readonly documentId: string;
  /** True when the repo now holds every change the peer held of the document when it sent the message. */
  readonly holdsTheirs: boolean;
}

/**
 * Calls `listener` each time `repo` has taken in a sync message from a peer about a document
 * `wants` accepts (default: all), saying whether the repo now holds everything the peer held of
 * that document; returns the unsubscribe function.
 *
 * @remarks For a process that must not write before it has learned what its peers hold (a relay
 * restored from an older backup). Automerge's sync state records the peer's heads with every
 * message; the repo holds them when none is missing locally. Listener errors are swallowed.
 */
export function onPeerSync(
  repo: Repo,
  listener: (report: PeerSyncReport) => void,
  wants: (peer: string, documentId: string) => boolean = () => true,
): () => void {
  const handler = (e: { peerId: string; documentId: string; syncState: A.SyncState }): void => {
    if (!wants(e.peerId, e.documentId)) return;
    const theirs = (e.syncState as { theirHeads?: A.Heads | null }).theirHeads;
    if (theirs === undefined || theirs === null) return;
    // The event fires inside the handle's update, before the new document is in place.
    queueMicrotask(() => {
      let holdsTheirs = false;
      try {
        const handle = repo.handles[e.documentId as DocumentId];
        holdsTheirs = handle?.isReady() === true && A.getMissingDeps(handle.doc(), theirs).length === 0;
      } catch {
        holdsTheirs = false;
      }
      try {
        listener({ peer: e.peerId, documentId: e.documentId, holdsTheirs });
      } catch {
        // A listener must not break the repo's event loop.
      }
    });
  };
  repo.synchronizer.on('sync-state', handler);
  return () => {
    repo.synchronizer.off('sync-state', handler);
  };
}
