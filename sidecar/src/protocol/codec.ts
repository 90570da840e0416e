// Frames ⇄ messages. Every failure becomes a ProtocolError with a message a
// client can show; nothing here throws anything else.

import type { z } from "zod";
import { ProtocolError } from "./errors.js";
import { requestEnvelope, STREAM_ACK, type Reply, type RequestEnvelope, type RequestId } from "./messages.js";

export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** What a ROUTER receives after the identity frame: the payload and whether an empty delimiter preceded it. */
export interface Envelope {
  identity: Buffer;
  delimited: boolean;
  payload: Buffer;
}

/** Split ROUTER frames; a REQ client sends [empty, payload], a DEALER may send [payload]. */
export function splitRouterFrames(frames: readonly Buffer[]): Envelope | ProtocolError {
  const [identity, ...rest] = frames;
  if (!identity) return new ProtocolError("invalid_request", "empty message");
  if (rest.length === 2 && rest[0]!.length === 0) return { identity, delimited: true, payload: rest[1]! };
  if (rest.length === 1) return { identity, delimited: false, payload: rest[0]! };
  return new ProtocolError(
    "invalid_request",
    `expected [empty delimiter, payload] or [payload], got ${rest.length} frames`,
  );
}

export function isStreamAck(payload: Buffer): boolean {
  return payload.length === STREAM_ACK.length && payload.toString("latin1") === STREAM_ACK;
}

export type ParsedRequest =
  | { ok: true; request: RequestEnvelope }
  | { ok: false; id: RequestId | null; error: ProtocolError };

function describeIssue(issue: { path: readonly PropertyKey[]; message: string }): string {
  const path = issue.path.map(String).join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** Decode and validate a request payload. */
export function parseRequest(payload: Buffer, maxBytes = DEFAULT_MAX_REQUEST_BYTES): ParsedRequest {
  const fail = (message: string, id: RequestId | null = null): ParsedRequest => ({
    ok: false,
    id,
    error: new ProtocolError("invalid_request", message),
  });
  if (payload.length === 0) return fail("empty payload");
  if (payload.length > maxBytes) return fail(`request of ${payload.length} bytes exceeds the limit of ${maxBytes} bytes`);
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return fail("payload is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail("payload is not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("request must be a JSON object");
  const rawId = (json as { id?: unknown }).id;
  const id = typeof rawId === "string" || typeof rawId === "number" ? rawId : null;
  const parsed = requestEnvelope.safeParse(json);
  if (!parsed.success) return fail(describeIssue(parsed.error.issues[0]!), id);
  return { ok: true, request: parsed.data };
}

/** Validate a method's params with its schema, as an invalid_params error. */
export function parseParams<S extends z.ZodType>(schema: S, params: unknown): z.output<S> {
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success) throw new ProtocolError("invalid_params", describeIssue(parsed.error.issues[0]!));
  return parsed.data;
}

export function encodeReply(reply: Reply): Buffer {
  return Buffer.from(JSON.stringify({ id: reply.id, result: reply.result ?? null, error: reply.error }), "utf8");
}

/** Frames for a ROUTER to send back, mirroring how the request was framed. */
export function routerReplyFrames(envelope: Pick<Envelope, "identity" | "delimited">, payload: Buffer): Buffer[] {
  return envelope.delimited ? [envelope.identity, Buffer.alloc(0), payload] : [envelope.identity, payload];
}

/** Decode a reply on the client side. */
export function decodeReply(payload: Buffer): Reply {
  const json: unknown = JSON.parse(utf8.decode(payload));
  if (typeof json !== "object" || json === null) throw new Error("reply is not a JSON object");
  const { id, result, error } = json as Record<string, unknown>;
  if (!(typeof id === "string" || typeof id === "number" || id === null)) throw new Error("reply id has the wrong type");
  if (!(typeof error === "string" || error === null)) throw new Error("reply error has the wrong type");
  return { id, result, error };
}
