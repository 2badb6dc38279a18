/**
 * Spellings of one ARM resource id or scope, for the property tests of canonical ids (docs/security.md
 * "Canonical ids"): case variants of every segment, and edits that could make one id name another resource or
 * slip past a prefix check (percent-encoding, white space, `//`, `.` and `..` segments, an encoded `/`), with
 * or without a trailing `/`.
 */
import fc from 'fast-check';

export interface Spelling {
  text: string;
  /** Only case changes and perhaps a trailing `/`: ARM treats it as the canonical id. */
  equivalent: boolean;
  /** The edits applied, for failure messages. */
  edits: string[];
}

/** White space and invisible characters, ASCII and Unicode. */
const SPACES = [' ', '\t', '\n', '\r', '\u000b', '\u00a0', '\u2003', '\u2028', '\u200b', '\ufeff', '\u0000', '\u007f', '\u0085'];

type Edit =
  | { kind: 'percent'; segment: number; at: number; lower: boolean }
  | { kind: 'double-percent'; segment: number; at: number }
  | { kind: 'encoded-slash'; segment: number }
  | { kind: 'space'; segment: number; at: number; char: string }
  | { kind: 'empty-segment'; segment: number }
  | { kind: 'dot-segment'; segment: number; form: '.' | '..' | 'x/..' };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('percent' as const), segment: fc.nat(), at: fc.nat(), lower: fc.boolean() }),
  fc.record({ kind: fc.constant('double-percent' as const), segment: fc.nat(), at: fc.nat() }),
  fc.record({ kind: fc.constant('encoded-slash' as const), segment: fc.nat() }),
  fc.record({ kind: fc.constant('space' as const), segment: fc.nat(), at: fc.nat(), char: fc.constantFrom(...SPACES) }),
  fc.record({ kind: fc.constant('empty-segment' as const), segment: fc.nat() }),
  fc.record({ kind: fc.constant('dot-segment' as const), segment: fc.nat(), form: fc.constantFrom('.' as const, '..' as const, 'x/..' as const) }),
);

function hex(char: string, lower: boolean): string {
  const h = char.charCodeAt(0).toString(16).padStart(2, '0');
  return '%' + (lower ? h : h.toUpperCase());
}

function apply(segments: string[], e: Edit): string[] {
  const out = [...segments];
  const i = e.segment % out.length;
  const s = out[i] ?? '';
  switch (e.kind) {
    case 'percent': {
      const at = e.at % s.length;
      out[i] = s.slice(0, at) + hex(s[at] ?? 'a', e.lower) + s.slice(at + 1);
      return out;
    }
    case 'double-percent': {
      const at = e.at % s.length;
      out[i] = s.slice(0, at) + '%25' + hex(s[at] ?? 'a', false).slice(1) + s.slice(at + 1);
      return out;
    }
    case 'encoded-slash': {
      // Joins this segment and the next with an encoded `/`.
      if (i === out.length - 1) return [...out.slice(0, i), `${s}%2F`];
      return [...out.slice(0, i), `${s}%2F${out[i + 1] ?? ''}`, ...out.slice(i + 2)];
    }
    case 'space': {
      const at = e.at % (s.length + 1);
      out[i] = s.slice(0, at) + e.char + s.slice(at);
      return out;
    }
    case 'empty-segment':
      return [...out.slice(0, i), '', ...out.slice(i)];
    case 'dot-segment':
      return [...out.slice(0, i), ...e.form.split('/'), ...out.slice(i)];
  }
}

/** Every case variant of `s` the flags pick (one flag per character; flags run out: unchanged). */
function recase(s: string, flags: readonly boolean[]): string {
  return [...s].map((c, i) => (flags[i] === true ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c)).join('');
}

/**
 * Spellings of `/` + `segments.join('/')`. `equivalent` spellings only change case (of any segment) and may add
 * a trailing `/`; the others carry one to three edits besides.
 */
export function spellings(segments: readonly string[], options: { edits?: boolean } = {}): fc.Arbitrary<Spelling> {
  const flags = fc.tuple(...segments.map((s) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length })));
  const edits = options.edits === false ? fc.constant([] as Edit[]) : fc.array(edit, { maxLength: 3 });
  return fc.record({ flags, edits, trailing: fc.boolean() }).map(({ flags: f, edits: es, trailing }) => {
    let segs = segments.map((s, i) => recase(s, f[i] ?? []));
    for (const e of es) segs = apply(segs, e);
    return {
      text: '/' + segs.join('/') + (trailing ? '/' : ''),
      equivalent: es.length === 0,
      edits: es.map((e) => JSON.stringify(e)),
    };
  });
}

/** Only case variants (and a trailing `/`): every one is the canonical id. */
export function caseVariants(segments: readonly string[]): fc.Arbitrary<Spelling> {
  return spellings(segments, { edits: false });
}

/** `/a/b/c` → `['a', 'b', 'c']`. */
export function segmentsOf(id: string): string[] {
  return id.split('/').filter((s) => s !== '');
}

/**
 * A spelling as a request path: characters an HTTP request line cannot carry (white space, controls, anything
 * beyond printable ASCII) are percent-encoded, as a client must send them; the server decodes them once.
 */
export function asRequestPath(text: string): string {
  return text.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}
