/**
 * Command output shaped like az's: `--output json` (the default) pretty-prints with sorted keys, `--output
 * table` prints aligned columns under a dashed header line.
 */

export type OutputFormat = 'json' | 'table';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['json', 'table'];

/** One table column: its header and how to read it from a row. */
export interface Column {
  header: string;
  value: (row: Record<string, unknown>) => unknown;
}

/** Checks an `--output` value. */
export function parseOutputFormat(value: unknown): OutputFormat {
  if (value === undefined) return 'json';
  if (typeof value === 'string' && (OUTPUT_FORMATS as readonly string[]).includes(value.toLowerCase())) return value.toLowerCase() as OutputFormat;
  throw new Error(`unsupported output format '${typeof value === 'string' ? value : typeof value}'; use one of: ${OUTPUT_FORMATS.join(', ')}`);
}

/** A column reading `path` (dotted) from each row, e.g. `column('Status', 'properties.provisioningState')`. */
export function column(header: string, path: string): Column {
  const parts = path.split('.');
  return {
    header,
    value: (row) => {
      let current: unknown = row;
      for (const part of parts) {
        if (current === null || typeof current !== 'object') return undefined;
        current = (current as Record<string, unknown>)[part];
      }
      return current;
    },
  };
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** az's default columns: the scalar top-level fields, names capitalised. */
function defaultColumns(rows: readonly Record<string, unknown>[]): Column[] {
  const keys: string[] = [];
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      const scalar = value === null || ['string', 'number', 'boolean'].includes(typeof value);
      if (scalar && !keys.includes(key)) keys.push(key);
    }
  }
  return keys.sort().map((key) => ({ header: key.charAt(0).toUpperCase() + key.slice(1), value: (row) => row[key] }));
}

function formatTable(value: unknown, columns: readonly Column[] | undefined): string {
  if (value === undefined || value === null) return '';
  const items = Array.isArray(value) ? value : [value];
  const rows = items.map((item): Record<string, unknown> => (item !== null && typeof item === 'object' ? (item as Record<string, unknown>) : { result: item }));
  if (rows.length === 0) return '';
  const cols = columns ?? defaultColumns(rows);
  if (cols.length === 0) return '';
  const cells = rows.map((row) => cols.map((c) => cell(c.value(row)).replace(/[\r\n]+/g, ' ')));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** Renders a command's result; `undefined` (e.g. after a delete) renders as nothing. */
export function formatResult(value: unknown, format: OutputFormat, columns?: readonly Column[]): string {
  if (value === undefined) return '';
  if (format === 'table') return formatTable(value, columns);
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

/** Writes a command's result to stdout. */
export function printResult(value: unknown, format: string, columns?: readonly Column[]): void {
  const text = formatResult(value, parseOutputFormat(format), columns);
  if (text !== '') process.stdout.write(text);
}
