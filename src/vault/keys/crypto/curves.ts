/**
 * The four Key Vault curves: node:crypto's names, coordinate widths, and the @noble/curves implementation used to
 * sign a caller-supplied digest (node:crypto would hash it again, keys spec §0.3).
 */
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { CurveName } from './types.js';

type Ecdsa = typeof p256;

export interface CurveInfo {
  /** The curve's name in node:crypto's generateKeyPair. */
  readonly nodeName: string;
  /** The curve's `crv` in node:crypto's JWK import/export. */
  readonly jwkName: string;
  /** Bytes of a coordinate, of the private scalar and of each half of an `r‖s` signature. */
  readonly bytes: number;
  readonly ecdsa: Ecdsa;
}

export const CURVES: Readonly<Record<CurveName, CurveInfo>> = {
  'P-256': { nodeName: 'prime256v1', jwkName: 'P-256', bytes: 32, ecdsa: p256 },
  'P-256K': { nodeName: 'secp256k1', jwkName: 'secp256k1', bytes: 32, ecdsa: secp256k1 },
  'P-384': { nodeName: 'secp384r1', jwkName: 'P-384', bytes: 48, ecdsa: p384 },
  'P-521': { nodeName: 'secp521r1', jwkName: 'P-521', bytes: 66, ecdsa: p521 },
};

/** The Key Vault curve of a `crv` as node:crypto writes it (secp256k1 → P-256K), or undefined. */
export function curveFromJwkName(crv: unknown): CurveName | undefined {
  for (const [name, info] of Object.entries(CURVES) as [CurveName, CurveInfo][]) if (info.jwkName === crv) return name;
  return undefined;
}

export function isCurveName(value: unknown): value is CurveName {
  return typeof value === 'string' && Object.hasOwn(CURVES, value);
}
