// Errors in OpenAI's shape ({"error": {message, type, param, code}}) with the
// HTTP status each protocol error code deserves, so OpenAI clients raise
// their usual exception classes (BadRequestError, RateLimitError, ...).

import { ProtocolError, type ErrorCode } from "../protocol/errors.js";

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = "HttpError";
  }

  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const STATUS_BY_CODE: Record<ErrorCode, { status: number; type: string; code: string | null }> = {
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  invalid_params: { status: 400, type: "invalid_request_error", code: null },
  unknown_method: { status: 404, type: "invalid_request_error", code: "unknown_url" },
  unavailable: { status: 503, type: "server_error", code: "model_unavailable" },
  // The client has gone or asked to stop; nginx's 499 says so in logs.
  cancelled: { status: 499, type: "server_error", code: "cancelled" },
  rate_limited: { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded" },
  forbidden: { status: 403, type: "permission_error", code: "forbidden" },
  internal: { status: 500, type: "server_error", code: null },
};

/** The protocol names a parameter by its wire name; an HTTP caller knows it by OpenAI's. */
const RENAMES: Array<[RegExp, string]> = [
  [/\btext_input element\b/g, "input item"],
  [/\btext_input\b/g, "input"],
  [/\bmax_new_tokens\b/g, "max_tokens"],
  [/\beos_string\b/g, "stop"],
];

export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ProtocolError) {
    const mapped = STATUS_BY_CODE[error.code];
    const message = RENAMES.reduce((text, [pattern, name]) => text.replace(pattern, name), error.message);
    return new HttpError(mapped.status, message, mapped.type, mapped.code);
  }
  return new HttpError(500, error instanceof Error ? error.message : String(error), "server_error");
}
