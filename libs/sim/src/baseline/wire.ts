import type { SignedEvent } from '@accord/protocol';

/** Client → server: one outbox item (an insert or a patch), or a pull of what changed. */
export type BaselineRequest =
  | { readonly t: 'push'; readonly req: number; readonly event: SignedEvent; readonly force?: true }
  | { readonly t: 'pull'; readonly req: number; readonly since: number };

/** Server → client. `reset` answers a request the server could not read (the connection drops). */
export type BaselineResponse =
  | { readonly t: 'pushed'; readonly req: number; readonly ok: true }
  | {
      readonly t: 'pushed';
      readonly req: number;
      readonly ok: false;
      readonly code: number;
      readonly rule: string;
    }
  | {
      readonly t: 'pulled';
      readonly req: number;
      /** The records returned (`kind/id`), each now the server's version. */
      readonly records: readonly string[];
      /** The accepted events that make up those records, in the server's order. */
      readonly events: readonly SignedEvent[];
    }
  | { readonly t: 'reset' };

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder('utf-8', { fatal: true });

/** A message as the bytes that cross the simulated network (JSON text, as the incumbent's REST API). */
export function encodeMessage(m: BaselineRequest | BaselineResponse): Uint8Array {
  return ENCODER.encode(JSON.stringify(m));
}

/** The message in `bytes`, or undefined when they are not a whole message (a severed transfer). */
export function decodeMessage<T extends BaselineRequest | BaselineResponse>(
  bytes: Uint8Array,
): T | undefined {
  try {
    const v: unknown = JSON.parse(DECODER.decode(bytes));
    return typeof v === 'object' && v !== null && typeof (v as { t?: unknown }).t === 'string'
      ? (v as T)
      : undefined;
  } catch {
    return undefined;
  }
}
