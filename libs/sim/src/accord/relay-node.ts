import type { NetworkAdapter, PeerId } from '@automerge/automerge-repo';
import type { EventVerifier } from '@accord/log';
import type { DeviceId, DeviceKeyPair, EventSigner } from '@accord/protocol';
import { FacilityNode, type FacilityMembersFile } from '@accord/relay';
import type { SimRepoNetwork } from '../repo-network.js';
import { RELAY_NODE } from '../scenario.js';
import type { Disk } from './disk.js';

/** What {@link openSimRelay} needs: one facility of the relay, on the simulated network. */
export interface SimRelayOptions {
  readonly members: FacilityMembersFile;
  /** The relay's key (one for every facility, as on a real relay). */
  readonly key: DeviceKeyPair;
  /** The facility's devices' node names (the relay's endpoint connects to them). */
  readonly devices: readonly string[];
  readonly disk: Disk;
  readonly sim: SimRepoNetwork;
  readonly clock: () => number;
  readonly verifier: EventVerifier;
  readonly signer: EventSigner;
  /** Told of every problem the node reports (its observer's `problem`). */
  readonly onProblem: (message: string) => void;
  /**
   * The facility's first open, on an empty disk: the store is known complete (`trustedOwnSeq: 0`).
   * Any later open (a restart, a restore) waits to hear its history from every tablet.
   */
  readonly fresh?: boolean;
  /** The node's `awaitDevicesMs` (default: its `catchUpMaxMs`, 30 s). */
  readonly awaitDevicesMs?: number;
}

/**
 * Opens the real relay core of one facility, a {@link FacilityNode}, on the simulator: its stores
 * on `disk`, its endpoint an adapter of node `relay` on the facility's own channel, whose
 * connections it is told of as the relay's WebSocket sessions would tell it.
 */
export function openSimRelay(o: SimRelayOptions): Promise<FacilityNode<NetworkAdapter>> {
  const eventStore = o.disk.eventStore();
  const storageAdapter = o.disk.storage();
  return FacilityNode.open({
    facility: o.members.facility,
    key: o.key,
    members: o.members,
    stores: {
      eventStore,
      storageAdapter,
      close: async () => {
        await eventStore.close();
        await storageAdapter.close();
      },
    },
    network: ({ onEvent }) => {
      const adapter = o.sim.adapter(RELAY_NODE, o.devices, o.members.facility);
      const device = (peerId: PeerId): DeviceId => peerId as string as DeviceId;
      adapter.on('peer-candidate', ({ peerId }) =>
        onEvent({ type: 'peer-connected', at: o.clock(), peer: device(peerId) }),
      );
      adapter.on('peer-disconnected', ({ peerId }) =>
        onEvent({
          type: 'peer-disconnected',
          at: o.clock(),
          peer: device(peerId),
          reason: 'transport-error',
          closeCode: 1006,
        }),
      );
      return adapter;
    },
    observer: {
      ingested: () => undefined,
      verdicts: () => undefined,
      network: () => undefined,
      problem: (_facility, message) => o.onProblem(message),
    },
    clock: o.clock,
    verifier: o.verifier,
    signer: o.signer,
    ...(o.fresh === true ? { trustedOwnSeq: 0 } : {}),
    ...(o.awaitDevicesMs === undefined ? {} : { awaitDevicesMs: o.awaitDevicesMs }),
  });
}
