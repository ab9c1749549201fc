import type { DeviceId } from '@accord/protocol';
import { refusalErrorCode, type RefusalReason, type SessionEndReason } from './close-codes.js';
import type { CommonAdapterOptions, NetworkEvent, NetworkEventListener, Refusal } from './types.js';

/** Counters, listeners and the log line sink shared by the links of one adapter. */
export class Telemetry {
  framesIn = 0;
  framesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  forbiddenDocuments = 0;
  withheld = 0;
  reconnects = 0;
  stalls = 0;
  readonly refused: Partial<Record<RefusalReason, number>> = {};
  readonly sessionsEnded: Partial<Record<SessionEndReason, number>> = {};
  readonly #listeners = new Set<NetworkEventListener>();
  readonly #log: (line: string) => void;
  readonly #onRefused: ((r: Refusal) => void) | undefined;
  readonly #name: string;
  readonly now: () => number;

  constructor(name: string, options: CommonAdapterOptions) {
    this.#name = name;
    this.now = options.now ?? Date.now;
    this.#log = options.log ?? (() => {});
    this.#onRefused = options.onRefused;
    if (options.onEvent !== undefined) this.#listeners.add(options.onEvent);
  }

  log(line: string): void {
    try {
      this.#log(`[${this.#name}] ${line}`);
    } catch {
      // A failing log sink must not break the network.
    }
  }

  subscribe(listener: NetworkEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: NetworkEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (e) {
        this.log(`event listener threw: ${String(e)}`);
      }
    }
  }

  refuse(
    stage: Refusal['stage'],
    reason: RefusalReason,
    status: number,
    detail: string,
    peer?: DeviceId,
  ): Refusal {
    const refusal: Refusal = {
      at: this.now(),
      stage,
      reason,
      code: refusalErrorCode(reason),
      status,
      detail,
      ...(peer === undefined ? {} : { peer }),
    };
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    this.log(
      `refused ${peer ?? 'unknown peer'} at ${stage}: ${reason} (${status} ${refusal.code}) ${detail}`,
    );
    try {
      this.#onRefused?.(refusal);
    } catch (e) {
      this.log(`onRefused threw: ${String(e)}`);
    }
    this.emit({ type: 'refused', at: refusal.at, refusal });
    return refusal;
  }

  sessionEnded(peer: DeviceId, reason: SessionEndReason, closeCode: number): void {
    this.sessionsEnded[reason] = (this.sessionsEnded[reason] ?? 0) + 1;
    if (reason === 'stalled' || reason === 'lost-frame') this.stalls++;
    this.log(`session with ${peer} ended: ${reason} (${closeCode})`);
    this.emit({ type: 'peer-disconnected', at: this.now(), peer, reason, closeCode });
  }
}
