/**
 * A dependency-free SVG chart of benchmark results against their targets: one row per
 * metric, the bar is the measured value as a fraction of its target (1.0 = exactly on
 * target), green when the target is met, red when it is missed. Rows may be grouped under
 * section headings.
 */

/** One metric as charted. */
export interface ChartRow {
  readonly label: string;
  readonly value: number;
  readonly target: number;
  /** 'min': the value must be at least the target; 'max': at most. */
  readonly kind: 'min' | 'max';
  readonly unit: string;
  /** A heading drawn above the first row of each run of rows with the same section. */
  readonly section?: string;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

/** Renders `rows` as a standalone SVG document. */
export function renderChart(title: string, rows: readonly ChartRow[]): string {
  const rowHeight = 34;
  const labelWidth = 300;
  const barWidth = 420;
  const width = labelWidth + barWidth + 230;
  const headingHeight = 26;
  const headings = rows.filter((row, i) => row.section !== undefined && row.section !== rows[i - 1]?.section);
  const bodyHeight = rows.length * rowHeight + headings.length * headingHeight;
  const height = 60 + bodyHeight + 30;
  const scaleMax = 2; // bars run from 0 to 2x target; the target line sits in the middle
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="28" font-size="17" font-weight="bold">${escape(title)}</text>`,
    `<text x="16" y="46" fill="#555">bar = measured / target (target line at 1.0×; capped at 2×); green = target met</text>`,
  ];
  let y = 60;
  rows.forEach((row, i) => {
    if (row.section !== undefined && row.section !== rows[i - 1]?.section) {
      parts.push(`<text x="16" y="${y + 19}" font-weight="bold" fill="#333">${escape(row.section)}</text>`);
      y += headingHeight;
    }
    const ratio = row.target === 0 ? 0 : row.value / row.target;
    const met = row.kind === 'min' ? row.value >= row.target : row.value <= row.target;
    // At least one pixel, so a tiny value still shows a bar.
    const w = Math.max(
      1,
      (Math.min(scaleMax, Number.isFinite(ratio) ? ratio : scaleMax) / scaleMax) * barWidth,
    );
    parts.push(
      `<text x="16" y="${y + 20}">${escape(row.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 6}" width="${w.toFixed(1)}" height="20" fill="${met ? '#2e8b57' : '#c0392b'}"/>`,
      `<text x="${labelWidth + barWidth + 10}" y="${y + 20}">${escape(`${format(row.value)} ${row.unit} (${row.kind === 'min' ? '≥' : '≤'} ${format(row.target)})`)}</text>`,
    );
    y += rowHeight;
  });
  const targetX = labelWidth + barWidth / scaleMax;
  parts.push(
    `<line x1="${targetX}" y1="56" x2="${targetX}" y2="${60 + bodyHeight}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${targetX - 12}" y="${height - 10}" fill="#333">1.0×</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** One of Accord's measures beside the anchor it is judged against, both in the same unit. */
export interface AnchorPair {
  readonly label: string;
  readonly unit: string;
  readonly accord: number;
  readonly anchor: number;
  /** What the anchor is (e.g. "stock automerge-repo 2.5.6"). */
  readonly anchorLabel: string;
  /** The target ratio accord / anchor, and whether Accord must be at least ('min') or at most ('max') that. */
  readonly target: number;
  readonly kind: 'min' | 'max';
}

/**
 * Renders Accord's measures beside their anchors as a standalone SVG: per pair, two bars on one
 * scale (the larger of the two fills the width), Accord's coloured by whether its ratio to the
 * anchor meets the target, the anchor's grey, and a tick where Accord's bar would meet it exactly.
 */
export function renderAnchorChart(title: string, pairs: readonly AnchorPair[]): string {
  const labelWidth = 300;
  const barWidth = 420;
  const width = labelWidth + barWidth + 230;
  const pairHeight = 78;
  const height = 60 + pairs.length * pairHeight + 10;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="28" font-size="17" font-weight="bold">${escape(title)}</text>`,
    `<text x="16" y="46" fill="#555">each pair on its own scale; tick = the target (anchor × target ratio); green = target met</text>`,
  ];
  pairs.forEach((pair, i) => {
    const y = 60 + i * pairHeight;
    const goal = pair.anchor * pair.target;
    const scale = Math.max(pair.accord, pair.anchor, goal);
    const w = (v: number): number =>
      Math.max(1, scale > 0 && Number.isFinite(v) ? (v / scale) * barWidth : 1);
    const ratio = pair.anchor === 0 ? Infinity : pair.accord / pair.anchor;
    const met = pair.kind === 'min' ? ratio >= pair.target : ratio <= pair.target;
    const goalX = labelWidth + w(goal);
    parts.push(
      `<text x="16" y="${y + 18}" font-weight="bold">${escape(pair.label)}</text>`,
      `<text x="16" y="${y + 40}">Accord</text>`,
      `<rect x="${labelWidth}" y="${y + 26}" width="${w(pair.accord).toFixed(1)}" height="18" fill="${met ? '#2e8b57' : '#c0392b'}"/>`,
      `<text x="${labelWidth + barWidth + 10}" y="${y + 40}">${escape(`${format(pair.accord)} ${pair.unit} (${format(ratio)}×, target ${pair.kind === 'min' ? '≥' : '≤'} ${format(pair.target)}×)`)}</text>`,
      `<text x="16" y="${y + 64}" fill="#555">${escape(pair.anchorLabel)}</text>`,
      `<rect x="${labelWidth}" y="${y + 50}" width="${w(pair.anchor).toFixed(1)}" height="18" fill="#999"/>`,
      `<text x="${labelWidth + barWidth + 10}" y="${y + 64}" fill="#555">${escape(`${format(pair.anchor)} ${pair.unit}`)}</text>`,
      `<line x1="${goalX.toFixed(1)}" y1="${y + 22}" x2="${goalX.toFixed(1)}" y2="${y + 48}" stroke="#333" stroke-width="2"/>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
