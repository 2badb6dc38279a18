/**
 * Command output with az's conventions (knack's `output.py` and `query.py`, as in azure-cli 2.45):
 *
 * - `--query <JMESPath>` is applied to the result first; a query that yields `null` prints nothing.
 * - `-o json` (the default) pretty-prints with sorted keys; `jsonc` and `yamlc` are the same, coloured when
 *   stdout is a terminal and `NO_COLOR` is unset (az falls back to plain when colour is off).
 * - `-o yaml` is PyYAML's block style with sorted keys.
 * - `-o table` prints aligned columns under a dashed line: a command's own columns, or (with `--query`, or a
 *   command without columns) one column per scalar field, `id`, `type` and `etag` skipped, names capitalised.
 * - `-o tsv` prints one line per item: an object's values (sorted by key, or in the order a multi-select
 *   hash of the query names them), a nested list as its length, a nested object as an empty field.
 * - `-o none` prints nothing.
 */
import jmespath from 'jmespath';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { ScalarTag, Tags } from 'yaml';

/** yaml is loaded when YAML is printed, not at every CLI start (a quarter of a client command's start-up). */
function toYaml(value: unknown, options: Yaml.ToStringOptions & Yaml.SchemaOptions & Yaml.DocumentOptions): string {
  return (createRequire(import.meta.url)('yaml') as typeof Yaml).stringify(value, options);
}

export type OutputFormat = 'json' | 'jsonc' | 'yaml' | 'yamlc' | 'table' | 'tsv' | 'none';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['json', 'jsonc', 'yaml', 'yamlc', 'table', 'tsv', 'none'];

/** How a command's result is printed: the `--output` format and the `--query` expression, parsed at the edge. */
export interface OutputOptions {
  output: OutputFormat;
  /** A JMESPath expression that compiled; `undefined` without `--query`. */
  query?: string;
  /** Whether `jsonc`/`yamlc` colour (default: stdout is a terminal and `NO_COLOR` is unset). */
  color?: boolean;
}

/** One table column: its header and how to read it from a row. */
export interface Column {
  header: string;
  value: (row: Record<string, unknown>) => unknown;
}

/** Checks an `--output` value (case-insensitive, as az's `type=str.lower`). */
export function parseOutputFormat(value: unknown): OutputFormat {
  if (value === undefined) return 'json';
  if (typeof value === 'string' && (OUTPUT_FORMATS as readonly string[]).includes(value.toLowerCase())) return value.toLowerCase() as OutputFormat;
  throw new Error(`unsupported output format '${typeof value === 'string' ? value : typeof value}'; use one of: ${OUTPUT_FORMATS.join(', ')}`);
}

/** Checks a `--query` value: it must compile as JMESPath (az refuses it before running the command). */
export function parseQuery(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new Error('argument --query: a JMESPath expression is required');
  try {
    jmespath.compile(value);
  } catch (error) {
    throw new Error(`argument --query: invalid JMESPath expression '${value}': ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return value;
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

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

/** Python's `repr` of a JSON value: how tabulate shows a list or an object inside a cell. */
function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string') {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    return quote + value.replace(/\\/g, '\\\\').replace(quote === "'" ? /'/g : /"/g, `\\${quote}`) + quote;
  }
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(', ')}]`;
  if (isObject(value))
    return `{${Object.entries(value)
      .map(([k, v]) => `${pythonRepr(k)}: ${pythonRepr(v)}`)
      .join(', ')}}`;
  return JSON.stringify(value);
}

/** A table cell, as az's tabulate prints Python values. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return pythonRepr(value);
}

const SKIPPED_TABLE_KEYS = new Set(['id', 'type', 'etag']);

/** knack's automatic table: per item, its non-null scalar fields (`id`, `type`, `etag` skipped), names capitalised. */
function automaticColumns(items: readonly unknown[], sortKeys: boolean): { columns: Column[]; rows: Record<string, unknown>[] } {
  const headers: string[] = [];
  const rows = items.map((item): Record<string, unknown> => {
    const row: Record<string, unknown> = {};
    if (isObject(item)) {
      const keys = sortKeys ? Object.keys(item).sort() : Object.keys(item);
      for (const [key, value] of keys.map((k) => [k, item[k]] as const)) {
        if (SKIPPED_TABLE_KEYS.has(key) || value === null || value === undefined || typeof value === 'object') continue;
        row[key === '' ? key : key.charAt(0).toUpperCase() + key.slice(1)] = value;
      }
    } else if (Array.isArray(item)) {
      (item as unknown[]).forEach((value, i) => {
        row[`Column${i + 1}`] = value;
      });
    } else {
      row.Result = item;
    }
    for (const header of Object.keys(row)) if (!headers.includes(header)) headers.push(header);
    return row;
  });
  return { columns: headers.map((header) => ({ header, value: (row) => row[header] })), rows };
}

/** knack sorts the automatic table's keys unless a query (whose order the user chose) is active. */
function formatTable(value: unknown, columns: readonly Column[] | undefined, queryActive: boolean): string {
  const items = Array.isArray(value) ? value : [value];
  let cols: readonly Column[];
  let rows: Record<string, unknown>[];
  if (columns === undefined) {
    ({ columns: cols, rows } = automaticColumns(items, !queryActive));
  } else {
    cols = columns;
    rows = items.map((item): Record<string, unknown> => (isObject(item) ? item : { result: item }));
  }
  // knack ends what tabulate makes with a newline, so an empty table is an empty line.
  if (rows.length === 0 || cols.length === 0) return '\n';
  // tabulate strips each cell (PRESERVE_WHITESPACE is off); a newline would break the row.
  const cells = rows.map((row) =>
    cols.map((c) =>
      cell(c.value(row))
        .replace(/[\r\n]+/g, ' ')
        .trim(),
    ),
  );
  // tabulate's "simple" layout: a column is as wide as its widest cell, and at least its header plus two.
  const widths = cols.map((c, i) => Math.max(c.header.length + 2, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** A value inside a TSV row, as knack's `_TsvOutput._dump_obj` writes Python values. */
function tsvField(value: unknown): string {
  if (Array.isArray(value)) return String(value.length);
  if (isObject(value)) return '';
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `fromResult` holds the command result's own objects: Python dicts, printed sorted; the rest are a query's hashes. */
function formatTsv(value: unknown, fromResult: WeakSet<object>): string {
  const items = Array.isArray(value) ? value : [value];
  return items
    .map((item) => {
      if (isObject(item)) {
        const keys = fromResult.has(item) ? Object.keys(item).sort() : Object.keys(item);
        return keys.map((key) => tsvField(item[key])).join('\t');
      }
      if (Array.isArray(item)) return item.map(tsvField).join('\t');
      if (typeof item === 'boolean') return String(item);
      return tsvField(item);
    })
    .map((line) => `${line}\n`)
    .join('');
}

const ANSI = { key: '\u001b[94m', string: '\u001b[32m', literal: '\u001b[36m', number: '\u001b[33m', reset: '\u001b[39m' };

/** Colours pretty-printed JSON's tokens for a terminal (keys, strings, numbers, literals). */
function colorJson(text: string): string {
  return text.replace(
    /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (match, str: string | undefined, colon: string | undefined, literal: string | undefined) => {
      if (str !== undefined) return colon === undefined ? `${ANSI.string}${str}${ANSI.reset}` : `${ANSI.key}${str}${ANSI.reset}${colon}`;
      if (literal !== undefined) return `${ANSI.literal}${literal}${ANSI.reset}`;
      return `${ANSI.number}${match}${ANSI.reset}`;
    },
  );
}

/** Colours YAML's keys for a terminal. */
function colorYaml(text: string): string {
  return text.replace(
    /^(\s*(?:- )?)([^\s:'"-][^:\n]*)(:)(?=\s|$)/gm,
    (_m, lead: string, key: string, colon: string) => `${lead}${ANSI.key}${key}${ANSI.reset}${colon}`,
  );
}

// PyYAML resolves YAML 1.1's booleans except the one-letter y/n forms: quote what it would read as a bool, no more.
const PY_TRUE = /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/;
const PY_FALSE = /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/;
const pyYamlTags = (tags: Tags): Tags =>
  tags.map((tag): Tags[number] => {
    if (typeof tag === 'string' || tag.tag !== 'tag:yaml.org,2002:bool' || tag.collection !== undefined) return tag;
    const scalar: ScalarTag = tag;
    return { ...scalar, test: scalar.identify?.(true) === true ? PY_TRUE : PY_FALSE };
  });

/** `yaml.safe_dump(result, default_flow_style=False)` as az calls it: block style, sorted keys, YAML 1.1 quoting. */
function formatYaml(result: unknown): string {
  const text = toYaml(result, { version: '1.1', customTags: pyYamlTags, indentSeq: false, sortMapEntries: true, lineWidth: 0, singleQuote: true });
  // PyYAML ends a document that is one plain scalar with an explicit end marker.
  const plainScalar = (result === null || typeof result !== 'object') && !text.startsWith("'") && !text.startsWith('"');
  return plainScalar ? `${text}...\n` : text;
}

function defaultColor(): boolean {
  return process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '';
}

/**
 * Renders a command's result: the query first, then the format. `undefined` (e.g. after a delete) and a query
 * result of `null` render as nothing, as az prints nothing for a `None` result.
 */
export function formatResult(value: unknown, options: OutputFormat | OutputOptions, columns?: readonly Column[]): string {
  const { output, query, color } = typeof options === 'string' ? { output: options, query: undefined, color: false } : options;
  if (value === undefined) return '';
  // Plain JSON from here on, as az has it: no undefined fields, no prototype-less objects for jmespath.js.
  const json = JSON.parse(JSON.stringify(value)) as unknown;
  // knack's query makes its multi-select hashes OrderedDicts (their keys in the expression's order), while the
  // result's own objects stay dicts; jmespath.js returns those by reference, so they can be told apart.
  const fromResult = new WeakSet<object>();
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (isObject(v)) {
      fromResult.add(v);
      Object.values(v).forEach(collect);
    }
  };
  collect(json);
  const result = query === undefined ? json : jmespath.search(json, query);
  if (result === null || result === undefined) return '';
  const colored = color ?? defaultColor();
  switch (output) {
    case 'none':
      return '';
    case 'table':
      // A command's columns are its table transformer, which az skips when a query is active.
      return formatTable(result, query === undefined ? columns : undefined, query !== undefined);
    case 'tsv':
      return formatTsv(result, fromResult);
    case 'yaml':
    case 'yamlc': {
      const text = formatYaml(result);
      return output === 'yamlc' && colored ? colorYaml(text) : text;
    }
    case 'json':
    case 'jsonc': {
      const text = `${JSON.stringify(sortKeys(result), null, 2)}\n`;
      return output === 'jsonc' && colored ? colorJson(text) : text;
    }
  }
}

/** Writes a command's result to stdout. */
export function printResult(value: unknown, options: OutputOptions, columns?: readonly Column[]): void {
  const text = formatResult(value, options, columns);
  if (text !== '') process.stdout.write(text);
}
