import { toBase64Url } from './base64url.js';
import { subtle } from './webcrypto.js';

/**
 * The name of segment `index` of `device`, `<device>/<index>`: the subject id of its
 * `SegmentSealed` event, and the key under which logs and the relay remember seals.
 */
export function segmentName(device: string, index: number): string {
  return `${device}/${index}`;
}

/**
 * The digest a `SegmentSealed` event carries: base64url SHA-256 over the segment's events'
 * signed canonical bytes in sequence order, each preceded by its length (4 bytes, big-endian),
 * so that no two different lists of events share a digest input.
 */
export async function segmentDigest(events: readonly Uint8Array[]): Promise<string> {
  let total = 0;
  for (const bytes of events) total += 4 + bytes.length;
  const input = new Uint8Array(total);
  const view = new DataView(input.buffer);
  let at = 0;
  for (const bytes of events) {
    view.setUint32(at, bytes.length);
    input.set(bytes, at + 4);
    at += 4 + bytes.length;
  }
  return toBase64Url(new Uint8Array(await subtle().digest('SHA-256', input)));
}
