/**
 * An error with a stable, machine-readable `code` beside its message for people. Domain and verification
 * errors extend it; each API maps codes to its own wire shape, so the error itself carries no HTTP status.
 */
export class CodedError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
