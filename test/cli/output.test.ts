import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { column, formatResult, parseOutputFormat, parseQuery, type OutputFormat } from '../../src/cli/output.js';

// Resource-shaped rows, as `group list` or `identity list` return them.
const ROWS = [
  { name: 'a', id: '/x', location: 'local', tags: { k: 'v' }, n: 3, ok: true, none: null },
  { name: 'bb', id: '/y', location: 'l2', tags: {}, n: 10, ok: false, none: null },
];
const SELECT = '[].{Name:name, Ok:ok, N:n, T:tags}';

void describe('cli output: az formats and --query', () => {
  // Expected strings below are what knack 0.10.1 (azure-cli 2.45's output layer) prints for the same input.
  void it('tsv: sorted values per row, nested object empty, null as None; a query hash keeps its key order', () => {
    assert.equal(formatResult(ROWS, 'tsv'), '/x\tlocal\t3\ta\tNone\tTrue\t\n/y\tl2\t10\tbb\tNone\tFalse\t\n');
    assert.equal(formatResult(ROWS, { output: 'tsv', query: SELECT }), 'a\tTrue\t3\t\nbb\tFalse\t10\t\n');
    assert.equal(formatResult({ name: 'dev' }, { output: 'tsv', query: 'name' }), 'dev\n');
    assert.equal(formatResult([true, 1, 'x', [1, 2]], 'tsv'), 'true\n1\nx\n1\t2\n');
  });

  void it('table: scalar fields sorted and capitalised, id/type/etag and nulls skipped; with a query, its columns in order', () => {
    assert.equal(
      formatResult(ROWS, 'table'),
      'Location    N    Name    Ok\n----------  ---  ------  -----\nlocal       3    a       True\nl2          10   bb      False\n',
    );
    assert.equal(formatResult(ROWS, { output: 'table', query: SELECT }), 'Name    Ok     N\n------  -----  ---\na       True   3\nbb      False  10\n');
    // A command's own columns give way to the query's, as az skips its table transformer under --query.
    assert.equal(formatResult(ROWS, { output: 'table', query: '[].name' }, [column('Loc', 'location')]), 'Result\n--------\na\nbb\n');
  });

  void it('yaml: block style, sorted keys', () => {
    assert.equal(
      formatResult(ROWS, 'yaml'),
      '- id: /x\n  location: local\n  n: 3\n  name: a\n  none: null\n  ok: true\n  tags:\n    k: v\n- id: /y\n  location: l2\n  n: 10\n  name: bb\n  none: null\n  ok: false\n  tags: {}\n',
    );
  });

  void it('json: sorted keys; jsonc colours only when asked; none and a null query result print nothing', () => {
    assert.equal(formatResult({ b: 1, a: 'x' }, { output: 'json', query: '{b: b, a: a}' }), '{\n  "a": "x",\n  "b": 1\n}\n');
    assert.equal(formatResult({ a: 1 }, { output: 'jsonc', color: false }), '{\n  "a": 1\n}\n');
    const esc = '\u001b';
    assert.ok(formatResult({ a: 'x' }, { output: 'jsonc', color: true }).includes(`${esc}[94m"a"${esc}[39m: ${esc}[32m"x"${esc}[39m`));
    assert.equal(formatResult({ a: 1 }, 'none'), '');
    assert.equal(formatResult({ a: 1 }, { output: 'json', query: 'missing' }), '');
  });

  void it('refuses an unknown format and a query that is not JMESPath, naming what is allowed', () => {
    assert.equal(parseOutputFormat('TSV'), 'tsv');
    assert.throws(() => parseOutputFormat('xml'), /unsupported output format 'xml'; use one of: json, jsonc, yaml, yamlc, table, tsv, none/);
    assert.throws(() => parseQuery('[?'), /argument --query: invalid JMESPath expression/);
    assert.throws(() => parseQuery(''), /argument --query/);
    assert.equal(parseQuery('[].name'), '[].name');
  });
});

const KNACK = '/usr/bin/python3';
const haveKnack = spawnSync(KNACK, ['-c', 'import knack, tabulate, jmespath, yaml'], { stdio: 'ignore', timeout: 30_000 }).status === 0;

// knack itself is the oracle: the same documents and queries through azure-cli 2.45's output layer (Debian's
// python3-knack, installed with azure-cli by .ci/run) must print byte for byte what openmsi prints.
const ORACLE = String.raw`
import sys, json, jmespath
from collections import OrderedDict
from knack.output import format_json, format_yaml, format_table, format_tsv
class Result:
    def __init__(self, result, query_active):
        self.result, self.table_transformer, self.is_query_active = result, None, query_active
out = []
for case in json.load(sys.stdin):
    result = case['doc']
    if case['query'] is not None:
        result = jmespath.compile(case['query']).search(result, jmespath.Options(OrderedDict))
    row = {}
    for name, fmt in (('json', format_json), ('yaml', format_yaml), ('tsv', format_tsv), ('table', format_table)):
        try:
            row[name] = '' if result is None else fmt(Result(result, case['query'] is not None))
        except Exception as e:
            row[name] = None
    out.append(row)
json.dump(out, sys.stdout)
`;

void describe('cli output: knack as the oracle', { skip: haveKnack ? false : 'Debian python3-knack not installed (.ci/run installs azure-cli)' }, () => {
  void it('json, yaml, tsv and table print what az prints, over generated documents and queries', () => {
    // Names and values as resources carry them, plus strings YAML or Python would read as something else.
    const text = fc.oneof(
      { weight: 5, arbitrary: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9 /._-]{0,11}$/) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'yes',
          'No',
          'on',
          'OFF',
          'null',
          'true',
          '~',
          'y',
          '123',
          '1.5',
          '0x1F',
          '2026-12-07',
          '',
          'a: b',
          '- x',
          "it's",
          '#tag',
          '*',
          'é',
        ),
      },
    );
    const scalar = fc.oneof(text, fc.integer({ min: -1000, max: 100_000 }), fc.boolean(), fc.constant(null));
    const value = fc.oneof(
      { weight: 4, arbitrary: scalar },
      { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('k', 'env', 'owner'), text, { maxKeys: 3 }) },
      { weight: 1, arbitrary: fc.array(fc.oneof(text, fc.integer({ min: 0, max: 99 })), { maxLength: 3 }) },
    );
    const row = fc.dictionary(fc.constantFrom('name', 'id', 'type', 'etag', 'location', 'n', 'ok', 'tags', 'list', 'none', 'kind'), value, {
      minKeys: 1,
      maxKeys: 7,
    });
    const doc = fc.oneof({ weight: 4, arbitrary: fc.array(row, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: row });
    const query = fc.constantFrom(
      null,
      '[]',
      '[0]',
      '[].name',
      '[].{Name:name, N:n, Tags:tags}',
      '[].[name, n]',
      'length(@)',
      '[?ok]',
      '@',
      'name',
      '{kind: kind, id: id}',
    );
    const cases = fc.sample(fc.record({ doc, query }), { numRuns: 300, seed: 20261207 });
    const oracle = JSON.parse(execFileSync(KNACK, ['-c', ORACLE], { input: JSON.stringify(cases), timeout: 60_000, encoding: 'utf8' })) as Record<
      string,
      string | null
    >[];
    cases.forEach(({ doc: d, query: q }, i) => {
      for (const format of ['json', 'yaml', 'tsv', 'table'] as OutputFormat[]) {
        const expected = oracle[i]![format];
        // knack raises "Table output unavailable" for what tabulate cannot lay out: not compared.
        if (expected === null) continue;
        const actual = formatResult(d, q === null ? { output: format } : { output: format, query: q });
        assert.equal(actual, expected, `${format} of ${JSON.stringify(d)} with --query ${String(q)}`);
      }
    });
  });
});
