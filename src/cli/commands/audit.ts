import type { Command } from 'commander';
import { bodyOf, globalOptions, withClient } from '../api-client.js';
import { printResult, type Column } from '../output.js';

interface AuditEventView {
  id: string;
  at: string;
  tenantId: string | null;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  detail: Record<string, unknown>;
}

/** `--since`: a duration back from now (`90s`, `15m`, `1h`, `2d`) or an ISO-8601 time; the authority resolves durations by its clock. */
export function parseSinceOption(value: string): string {
  const trimmed = value.trim();
  if (/^\d{1,9}[smhd]$/.test(trimmed)) return trimmed;
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed) && Number.isFinite(Date.parse(trimmed))) return new Date(Date.parse(trimmed)).toISOString();
  throw new Error(`--since must be a duration such as 90s, 15m, 1h or 2d, or an ISO time such as 2026-11-30T12:00:00Z (got '${value}')`);
}

const HOST_TYPES = /\/providers\/(Microsoft\.HybridCompute\/machines|Microsoft\.Compute\/virtualMachines)\//i;

/** The host an event concerns: the target or actor that is a machine, or a token's `host` detail. */
function hostOf(event: AuditEventView): string {
  const candidates = [event.target, event.actor, event.detail['host']];
  const id = candidates.find((c): c is string => typeof c === 'string' && HOST_TYPES.test(c));
  return id === undefined ? '' : (id.split('/').at(-1) ?? id);
}

/** The identity an event concerns: an agent record's identity, a token's principal, else the actor. */
function identityOf(event: AuditEventView): string {
  if (typeof event.detail['identity'] === 'string') return event.detail['identity'];
  if (event.action.startsWith('agent.')) return '';
  return HOST_TYPES.test(event.actor) ? '' : event.actor;
}

function callerOf(event: AuditEventView): string {
  const caller = event.detail['caller'];
  if (caller === null || typeof caller !== 'object')
    return typeof event.detail['source'] === 'string' && event.action.startsWith('host.') ? event.detail['source'] : '';
  const { address, pid, exe } = caller as { address?: unknown; pid?: unknown; exe?: unknown };
  const parts = [typeof address === 'string' ? address : '', typeof pid === 'number' ? `pid ${String(pid)}` : '', typeof exe === 'string' ? exe : ''];
  return parts.filter((p) => p !== '').join(' ');
}

const text = (value: unknown): string => (typeof value === 'string' || typeof value === 'number' ? String(value) : '');

const AUDIT_COLUMNS: Column[] = [
  { header: 'Time', value: (row) => row['at'] },
  { header: 'Action', value: (row) => row['action'] },
  { header: 'Outcome', value: (row) => row['outcome'] },
  { header: 'Identity', value: (row) => identityOf(row as unknown as AuditEventView) },
  { header: 'Host', value: (row) => hostOf(row as unknown as AuditEventView) },
  {
    header: 'Audience',
    value: (row) => text((row as unknown as AuditEventView).detail['audience']) || (String(row['action']).startsWith('token.') ? row['target'] : ''),
  },
  { header: 'Surface', value: (row) => text((row as unknown as AuditEventView).detail['surface']) },
  { header: 'Caller', value: (row) => callerOf(row as unknown as AuditEventView) },
  { header: 'Count', value: (row) => text((row as unknown as AuditEventView).detail['count']) },
];

/** `openmsi audit list`: the authority's audit trail, agents' token records included. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Read the audit trail: tokens issued and served, refusals, directory changes, enrolments.');
  audit
    .command('list')
    .description(
      'List audit events, newest first. --identity matches an identity (object id, client id, name or resource id) as actor or target; --host a host (name or resource id).',
    )
    .option('--identity <id>', 'an identity: object id, client id, name or resource id')
    .option('--host <host>', 'a host: name or resource id')
    .option('--since <when>', 'only events since: a duration (90s, 15m, 1h, 2d) or an ISO time')
    .option('--action <action>', 'only this action, e.g. agent.token.served, token.issued, host.enrolled')
    .option('--limit <n>', 'at most this many events (1-1000)', '100')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi audit list --since 1h -o table\n  openmsi audit list --host build-01 --action agent.token.refused\n  openmsi audit list --identity app-id --since 2026-11-30T00:00:00Z',
    )
    .action(async (opts: { identity?: string; host?: string; since?: string; action?: string; limit: string }, cmd: Command) => {
      const query: Record<string, string> = { limit: opts.limit };
      if (opts.since !== undefined) query['since'] = parseSinceOption(opts.since);
      if (opts.identity !== undefined) query['identity'] = opts.identity;
      if (opts.host !== undefined) query['host'] = opts.host;
      if (opts.action !== undefined) query['action'] = opts.action;
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi<{ value: AuditEventView[] }>('GET', '/audit', { query })).value);
      printResult(result, globalOptions(cmd), AUDIT_COLUMNS);
    });
}
