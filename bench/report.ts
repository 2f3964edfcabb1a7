/** The bench's output: one table of targets (measured against the issue's goals) and the absolute figures. */

/** One row of the targets table. */
export interface TargetRow {
  target: string;
  /** Human form of the goal, e.g. `≥ 0.8×`. */
  goal: string;
  measured: number | undefined;
  /** How `measured` is printed. */
  unit: '×' | 'MB' | 's' | 'statements';
  pass: boolean | undefined;
  /** Why there is no measurement (e.g. no DATABASE_URL). */
  skipped?: string;
}

/** A target `measured ≤ limit` (or `≥` when `atLeast`); undefined measured means skipped. */
export function row(target: string, measured: number | undefined, limit: number, unit: TargetRow['unit'], options: { atLeast?: boolean; skipped?: string } = {}): TargetRow {
  const goal = `${options.atLeast ? '≥' : '≤'} ${limit}${unit === '×' ? '×' : ` ${unit}`}`;
  if (measured === undefined || Number.isNaN(measured)) return { target, goal, measured: undefined, unit, pass: undefined, skipped: options.skipped ?? 'not measured' };
  return { target, goal, measured, unit, pass: options.atLeast ? measured >= limit : measured <= limit };
}

const fmt = (value: number, unit: TargetRow['unit']) =>
  unit === '×' ? `${value.toFixed(2)}×` : unit === 's' ? `${value.toFixed(2)} s` : unit === 'MB' ? `${value.toFixed(0)} MB` : value.toFixed(1);

/** Prints the targets as a Markdown table. */
export function printTargets(rows: readonly TargetRow[]): void {
  console.log('\n| target | goal | measured | result |');
  console.log('|---|---|---:|---|');
  for (const r of rows) {
    const measured = r.measured === undefined ? '—' : fmt(r.measured, r.unit);
    const result = r.pass === undefined ? `skipped: ${r.skipped}` : r.pass ? 'pass' : 'FAIL';
    console.log(`| ${r.target} | ${r.goal} | ${measured} | ${result} |`);
  }
}

/** A figure as printed: integers whole, other numbers to three significant digits or so. */
function cell(value: string | number): string {
  if (typeof value === 'string') return value;
  if (Number.isNaN(value)) return '—';
  if (Number.isInteger(value)) return value.toLocaleString('en');
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** Prints a Markdown table of absolute figures. */
export function printFigures(title: string, header: readonly string[], lines: readonly (readonly (string | number)[])[]): void {
  if (!lines.length) return;
  console.log(`\n${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const line of lines) console.log(`| ${line.map(cell).join(' | ')} |`);
}
