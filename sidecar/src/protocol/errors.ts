// Error codes carried in a reply's `error` string as "<code>: <message>".
// The C extension reads the code to choose NULL, P0001 or another SQLSTATE.

export const ERROR_CODES = [
  "invalid_request",
  "unknown_method",
  "invalid_params",
  "unavailable",
  "cancelled",
  "rate_limited",
  "forbidden",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error meant to travel to the client as a reply. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ProtocolError";
  }

  toWire(): string {
    return `${this.code}: ${this.message}`;
  }
}

export const invalidParams = (message: string): ProtocolError => new ProtocolError("invalid_params", message);
export const unavailable = (message: string): ProtocolError => new ProtocolError("unavailable", message);

/** Split a wire error back into code and message; an unknown prefix is "internal". */
export function parseWireError(error: string): { code: ErrorCode; message: string } {
  const colon = error.indexOf(": ");
  const prefix = colon > 0 ? error.slice(0, colon) : "";
  const code = (ERROR_CODES as readonly string[]).includes(prefix) ? (prefix as ErrorCode) : undefined;
  return code ? { code, message: error.slice(colon + 2) } : { code: "internal", message: error };
}
