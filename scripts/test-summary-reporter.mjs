// A node:test reporter that collects what the summary needs from one `node --test <file>` run: the run's totals,
// which tests failed (with the first line of the error) and which were skipped (with the reason). It writes them
// as one JSON object; scripts/run-tests.mjs runs it beside the TAP reporter for every test file, with its own
// destination, and merges the objects of all files into the summary it prints after the TAP.
import { relative } from 'node:path';

const TOTALS = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/;

/** Where a test came from, relative to the working directory when possible. */
function where(data) {
  return typeof data.file === 'string' ? relative(process.cwd(), data.file) || data.file : '';
}

function label(data) {
  const file = where(data);
  return file === '' || file === data.name ? data.name : `${file}: ${data.name}`;
}

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* summary(source) {
  const totals = {};
  const failed = [];
  const skipped = [];
  for await (const { type, data } of source) {
    if (type === 'test:diagnostic') {
      const match = TOTALS.exec(data.message);
      // The run's totals are the last diagnostics at nesting 0.
      if (match !== null && data.nesting === 0) totals[match[1]] = Number(match[2]);
    } else if (type === 'test:pass' || type === 'test:fail') {
      if (data.skip !== undefined && data.skip !== false) {
        // Node counts a skipped suite as a suite, not among the skipped tests; say which it is.
        const kind = data.details?.type === 'suite' ? 'suite ' : '';
        skipped.push(`${kind}${label(data)} (${typeof data.skip === 'string' && data.skip !== '' ? data.skip : 'no reason given'})`);
      }
      // A suite that failed only because a test in it failed is not a failure of its own.
      if (type === 'test:fail' && data.details?.error?.failureType !== 'subtestsFailed') {
        const message = String(data.details?.error?.message ?? '').split('\n')[0];
        failed.push(`${label(data)}${message === '' ? '' : ` (${message})`}`);
      }
    }
  }
  yield `${JSON.stringify({ totals, failed, skipped })}\n`;
}
