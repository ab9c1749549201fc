// Plain-text tables for the terminal: no dependency, no colours, safe to pipe.

/** Longest cell shown; longer ones end with `…` (the `--json` output has everything). */
export const MAX_CELL = 60;

/** Control characters (a newline in a reason, an escape sequence in hostile data) shown as spaces. */
function clean(cell: string, max = MAX_CELL): string {
  const flat = cell.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Lines of a table: the header, a rule, then one line per row; columns separated by two
 * spaces and padded to their widest cell (the last column is not padded).
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const cells = [headers, ...rows].map((row) => headers.map((_, i) => clean(row[i] ?? '')));
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const [head, ...body] = cells;
  return [line(head!), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

/** Lines of `label  value` pairs, the labels padded to the longest (values are not cut). */
export function formatPairs(pairs: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}  ${clean(value, Infinity)}`.trimEnd());
}
