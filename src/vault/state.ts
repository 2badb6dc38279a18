/**
 * What the hooks learn about a request (its vault, its caller, its operation), for the handlers and the
 * audit hook after them. Kept off the request object so no serializer can ever print it.
 */
import type { FastifyRequest } from 'fastify';
import type { Vault } from '../store/types.js';
import type { VaultOperation } from './contracts.js';

/** An authenticated caller: the token's claims that identify it (never the token). */
export interface VaultCaller {
  objectId: string;
  tenantId: string;
  appId: string | undefined;
  issuer: string;
}

/** What a route declares in its `config`: its operation, and whether it acts on one object (named by `:name`) or the vault. */
export interface VaultRouteConfig {
  op: VaultOperation;
  /** `secret`: RBAC scope `{vault}/secrets/{name}`; `key`: `{vault}/keys/{name}`; `vault`: the vault's id. */
  target: 'secret' | 'key' | 'vault';
}

export interface VaultRequestState {
  vault: Vault;
  caller?: VaultCaller;
  route?: VaultRouteConfig;
  /** The secret or key named in the path, when there is one (which of the two: `route.target`). */
  objectName?: string;
  /** The authorisation decision, once made. */
  decision?: 'allowed' | 'denied';
  apiVersion?: string;
}

const states = new WeakMap<FastifyRequest, VaultRequestState>();

export function setState(request: FastifyRequest, state: VaultRequestState): void {
  states.set(request, state);
}

/** The request's state, or undefined before the vault was resolved. */
export function stateOf(request: FastifyRequest): VaultRequestState | undefined {
  return states.get(request);
}

/** The state of a request that passed every hook (handlers only). */
export function admitted(request: FastifyRequest): Required<Pick<VaultRequestState, 'vault' | 'caller' | 'apiVersion'>> & VaultRequestState {
  const state = states.get(request);
  if (state?.caller === undefined || state.apiVersion === undefined) throw new TypeError('vault route served without its hooks');
  return state as Required<Pick<VaultRequestState, 'vault' | 'caller' | 'apiVersion'>> & VaultRequestState;
}
