// A node:test reporter that prints only a short summary at the end of the run: how many tests passed,
// failed and were skipped, which failed, and why each skip was skipped. scripts/run-tests.mjs runs it
// beside the TAP reporter, with its own destination, and prints what it wrote after the TAP.
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
  const seconds = ((totals.duration_ms ?? 0) / 1000).toFixed(1);
  let out = '\n# ---- summary ----\n';
  out += `# passed ${String(totals.pass ?? 0)}, failed ${String(totals.fail ?? 0)}, skipped ${String(totals.skipped ?? 0)}`;
  if (totals.cancelled) out += `, cancelled ${String(totals.cancelled)}`;
  if (totals.todo) out += `, todo ${String(totals.todo)}`;
  out += ` (${String(totals.tests ?? 0)} tests in ${String(totals.suites ?? 0)} suites, ${seconds} s)\n`;
  if (failed.length > 0) out += `# failed:\n${failed.map((f) => `#   ${f}\n`).join('')}`;
  if (skipped.length > 0) out += `# skipped:\n${skipped.map((s) => `#   ${s}\n`).join('')}`;
  yield out;
}
