import { WebSocket } from 'ws';
import { CloseCode } from './close-codes.js';

// `ws` closes with 1009 when a frame passes maxPayload and with 1002/1007 on protocol or UTF-8
// errors, before our handlers run. The subclass renames those codes to ours so the peer learns
// the documented reason (4413 too large, 4400 bad frame).
const RENAMED: ReadonlyMap<number, [number, string]> = new Map([
  [1009, [CloseCode.TooLarge, 'NETWORK_FRAME_TOO_LARGE']],
  [1002, [CloseCode.BadFrame, 'NETWORK_BAD_FRAME']],
  [1007, [CloseCode.BadFrame, 'NETWORK_BAD_FRAME']],
]);

/**
 * A `ws` WebSocket whose protocol-error closes carry Accord's close codes.
 *
 * @remarks Used by both adapters (the server passes it as `WebSocket` to its WebSocketServer).
 */
export class GuardedWebSocket extends WebSocket {
  override close(code?: number, data?: string | Buffer): void {
    const renamed = code === undefined ? undefined : RENAMED.get(code);
    if (renamed === undefined) super.close(code, data);
    else super.close(renamed[0], renamed[1]);
  }
}
