// jmespath.js (the reference implementation az's Python library follows) ships no types.
declare module 'jmespath' {
  /** Parses an expression; throws (ParserError, LexerError) when it is not JMESPath. */
  export function compile(expression: string): unknown;
  /** Evaluates `expression` against a JSON document. */
  export function search(document: unknown, expression: string): unknown;
  const jmespath: { compile: typeof compile; search: typeof search };
  export default jmespath;
}
