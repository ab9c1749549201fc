import { sortedKeys, type JsonValue } from '@accord/protocol';

/** Copies schema output as JSON would (`undefined` keys dropped), so it is canonical-encodable, keys sorted. */
export function toJson(value: unknown): JsonValue {
  // Plain data (the common case) is copied directly: the JSON text round trip cost more than any
  // other step of preparing an append. Anything else takes the round trip, JSON's own rules.
  const copy = plainCopy(value, 0);
  return copy === NOT_PLAIN ? (JSON.parse(JSON.stringify(value)) as JsonValue) : copy;
}

const NOT_PLAIN = Symbol('not plain');
/** Deeper than any schema's data: give the rest to JSON (which reports a cycle). */
const MAX_COPY_DEPTH = 64;

function plainCopy(v: unknown, depth: number): JsonValue | typeof NOT_PLAIN {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      // JSON writes non-finite numbers as null and -0 as 0.
      return Number.isFinite(v) && !Object.is(v, -0) ? v : NOT_PLAIN;
    case 'object': {
      if (v === null) return null;
      if (depth >= MAX_COPY_DEPTH) return NOT_PLAIN;
      if (Array.isArray(v)) {
        const out: JsonValue[] = [];
        for (let i = 0; i < v.length; i++) {
          // A hole or undefined becomes null in JSON: not plain.
          const item = v[i] === undefined ? NOT_PLAIN : plainCopy(v[i], depth + 1);
          if (item === NOT_PLAIN) return NOT_PLAIN;
          out.push(item);
        }
        return out;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype || 'toJSON' in v) return NOT_PLAIN;
      const out: { [key: string]: JsonValue } = {};
      // Keys in canonical (UTF-16) order: the signed envelope then encodes in one pass
      // (JSON.stringify), and the event looks like one decoded from its canonical bytes.
      for (const key of sortedKeys(v)) {
        const item = (v as Record<string, unknown>)[key];
        if (item === undefined) continue;
        // `out.__proto__ = …` would set the prototype, not a key.
        if (key === '__proto__') return NOT_PLAIN;
        const copy = plainCopy(item, depth + 1);
        if (copy === NOT_PLAIN) return NOT_PLAIN;
        out[key] = copy;
      }
      return out;
    }
    default:
      // Functions and symbols: JSON drops them from objects and writes null in arrays.
      return NOT_PLAIN;
  }
}
