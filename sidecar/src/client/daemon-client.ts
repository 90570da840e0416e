// A TypeScript client for the daemon: one DEALER socket, many requests in
// flight, replies matched by id, streams acknowledged chunk by chunk.

import { Dealer } from "zeromq";
import {
  decodeReply,
  decodeVectorFrame,
  parseWireError,
  STREAM_ACK,
  STREAM_END_MARKER,
  type ErrorCode,
  type Method,
  type Origin,
  type Reply,
} from "../protocol/index.js";

export class DaemonError extends Error {
  constructor(
    readonly code: ErrorCode | "timeout",
    message: string,
  ) {
    super(message);
    this.name = "DaemonError";
  }
}

interface Waiter {
  onReply(reply: Reply, vectorFrame?: Buffer): void;
  onError(error: Error): void;
}

export interface RequestOptions {
  timeoutMs?: number;
  origin?: Origin;
  /** The daemon's admin token, for admin methods (shutdown). */
  adminToken?: string | undefined;
}

export class DaemonClient {
  private readonly socket: Dealer;
  private readonly waiters = new Map<string, Waiter>();
  private counter = 0;
  private sending: Promise<void> = Promise.resolve();
  private readonly loop: Promise<void>;
  private closed = false;

  constructor(
    readonly endpoint: string,
    private readonly defaultTimeoutMs = 30_000,
    /** CURVE keys (Z85) for a daemon that requires them. */
    curve?: { serverPublicKey: string; publicKey: string; secretKey: string },
  ) {
    // immediate: nothing queues for a daemon that is not there; sendTimeout: a send never waits forever.
    this.socket = new Dealer({
      linger: 0,
      immediate: true,
      sendTimeout: defaultTimeoutMs,
      ...(curve ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {}),
    });
    this.socket.connect(endpoint);
    this.loop = this.receive();
  }

  private async receive(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        // [empty delimiter, JSON] or, for vectors asked for as f32le, [empty delimiter, JSON, vector frame].
        const [payload, vectorFrame] = frames[0]?.length === 0 ? frames.slice(1) : frames;
        if (!payload) continue;
        let reply: Reply;
        try {
          reply = decodeReply(payload);
        } catch {
          continue;
        }
        this.waiters.get(String(reply.id))?.onReply(reply, vectorFrame);
      }
    } catch (error) {
      if (!this.closed) for (const w of this.waiters.values()) w.onError(error as Error);
    }
  }

  private send(payload: string): Promise<void> {
    const sent = this.sending.then(() => this.socket.send([Buffer.alloc(0), Buffer.from(payload, "utf8")]));
    this.sending = sent.catch(() => undefined);
    return sent;
  }

  private nextId(): string {
    return `ts-${process.pid}-${++this.counter}`;
  }

  /** Send one request; resolves with `result`, rejects with DaemonError (its code from the reply, or "timeout"). */
  async request<T = unknown>(method: Method | string, params: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<T> {
    const id = this.nextId();
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new DaemonError("timeout", `no reply to ${method} within ${timeoutMs} ms from ${this.endpoint}`));
      }, timeoutMs);
      this.waiters.set(id, {
        onReply: (reply, vectorFrame) => {
          clearTimeout(timer);
          this.waiters.delete(id);
          if (reply.error !== null) {
            const { code, message } = parseWireError(reply.error);
            reject(new DaemonError(code, message));
          } else if (vectorFrame) {
            // Asked for with vector_encoding "f32le": the same shape as the JSON result.
            try {
              const vectors = decodeVectorFrame(reply.result, vectorFrame);
              resolve((method === "embed" ? vectors[0] : vectors) as T);
            } catch (error) {
              reject(new DaemonError("internal", (error as Error).message));
            }
          } else resolve(reply.result as T);
        },
        onError: (error) => {
          clearTimeout(timer);
          this.waiters.delete(id);
          reject(error);
        },
      });
      const body = { id, method, params, ...(options.origin ? { origin: options.origin } : {}), ...(options.adminToken ? { admin_token: options.adminToken } : {}) };
      this.send(JSON.stringify(body)).catch((error: unknown) => this.waiters.get(id)?.onError(error as Error));
    });
  }

  /** Stream a generation: yields chunks, acknowledging each, until the end marker. */
  async *stream(params: Record<string, unknown>, options: RequestOptions = {}): AsyncGenerator<string> {
    const id = this.nextId();
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const replies: Reply[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    this.waiters.set(id, {
      onReply: (reply) => {
        replies.push(reply);
        wake?.();
      },
      onError: (error) => {
        failure = error;
        wake?.();
      },
    });
    let finished = false;
    try {
      await this.send(JSON.stringify({ id, method: "generate_iter", params, ...(options.origin ? { origin: options.origin } : {}) }));
      for (;;) {
        while (replies.length === 0 && !failure) {
          const arrived = new Promise<void>((resolve) => (wake = resolve));
          const timer = setTimeout(() => {
            failure = new DaemonError("timeout", `no stream chunk within ${timeoutMs} ms`);
            wake?.();
          }, timeoutMs);
          await arrived;
          clearTimeout(timer);
        }
        if (failure) throw failure;
        const reply = replies.shift()!;
        if (reply.error !== null) {
          const { code, message } = parseWireError(reply.error);
          throw new DaemonError(code, message);
        }
        const token = (reply.result as { token?: unknown } | null)?.token;
        if (typeof token !== "string") throw new DaemonError("internal", "stream reply without a token");
        if (token === STREAM_END_MARKER) {
          finished = true;
          return;
        }
        yield token;
        await this.send(STREAM_ACK);
      }
    } finally {
      this.waiters.delete(id);
      // A consumer that stopped early: tell the daemon so the generation stops now.
      if (!finished && !failure) void this.request("cancel", { request_id: id }, { timeoutMs: 1000 }).catch(() => undefined);
    }
  }

  async ping(timeoutMs = 1000): Promise<boolean> {
    try {
      return (await this.request("ping", {}, { timeoutMs })) === "pong";
    } catch {
      return false;
    }
  }

  /** Close at once; a send still waiting for a connection is abandoned. */
  async close(): Promise<void> {
    this.closed = true;
    this.socket.close();
    await this.loop;
  }
}
