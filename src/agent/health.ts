/**
 * The agent's `GET /healthz` and `GET /readyz` (docs/agent.md). Both run after the request guard, like every
 * path. Ready means the agent can serve new tokens now: its host credential is unexpired, the authority has
 * not refused the host, and the authority answered the host's identity read (`self`) recently. An unready
 * agent still answers cached tokens; readiness is for monitoring. Bodies name checks and states only: never a
 * token, identity, host id or authority address.
 */
import type { Clock } from '../shared/clock.js';
import { AGENT_DEFAULTS } from '../shared/config.js';

/** One check's state. */
export type AgentCheckState = 'ok' | 'failing';

/** The agent's `/readyz` body. */
export interface AgentReadinessReport {
  status: 'ready' | 'not_ready';
  checks: {
    hostCredential: { state: AgentCheckState; detail?: string };
    authority: { state: AgentCheckState; detail?: string };
  };
}

/** What readiness reads, all in memory (a probe costs no call to the authority). */
export interface AgentReadinessSources {
  clock: Clock;
  /** Epoch seconds the host credential in use expires at. */
  credentialExpiresOn(): number;
  hostRefused(): boolean;
  /** Clock time of the authority's last answer to `self`, undefined before the first. */
  lastAuthorityAnswerAt(): number | undefined;
  pollMs: number;
  /** Default: {@link AGENT_DEFAULTS.readyStaleMs}, at least three poll intervals. */
  staleMs?: number;
}

/** Computes the readiness report now. */
export function agentReadiness(sources: AgentReadinessSources): AgentReadinessReport {
  const now = sources.clock.now();
  const staleMs = Math.max(sources.staleMs ?? AGENT_DEFAULTS.readyStaleMs, 3 * sources.pollMs);
  const checks: AgentReadinessReport['checks'] = {
    hostCredential: { state: 'ok' },
    authority: { state: 'ok' },
  };
  if (sources.hostRefused()) checks.hostCredential = { state: 'failing', detail: 'the authority does not recognise this host' };
  else if (sources.credentialExpiresOn() * 1000 <= now) checks.hostCredential = { state: 'failing', detail: 'the host credential has expired' };
  const answered = sources.lastAuthorityAnswerAt();
  if (answered === undefined) checks.authority = { state: 'failing', detail: 'the authority has not answered yet' };
  else if (now - answered > staleMs)
    checks.authority = { state: 'failing', detail: `no answer from the authority for over ${String(Math.round(staleMs / 1000))} s` };
  const ready = checks.hostCredential.state === 'ok' && checks.authority.state === 'ok';
  return { status: ready ? 'ready' : 'not_ready', checks };
}
