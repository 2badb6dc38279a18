/**
 * Lenient base64 reading for imported JWK fields: clients send base64url, padded base64url or standard base64,
 * and Buffer.from(…, 'base64url') would silently skip any other character, so the alphabet is checked first.
 */

const LENIENT = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The bytes of a base64/base64url string (padded or not), or undefined when it is not one. */
export function decodeLenient(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !LENIENT.test(value)) return undefined;
  const bare = value.replace(/=+$/, '');
  // A single character left over in the last quantum carries fewer than 8 bits: not base64.
  if (bare.length % 4 === 1) return undefined;
  if (value.length !== bare.length && value.length % 4 !== 0) return undefined;
  return Buffer.from(bare.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
}

/** base64url without padding, as Key Vault emits every byte field. */
export function encodeBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** `bytes` left-padded with zeros to `width` (the caller checked that it is not longer). */
export function leftPad(bytes: Uint8Array, width: number): Buffer {
  const out = Buffer.alloc(width);
  out.set(bytes, width - bytes.length);
  return out;
}
