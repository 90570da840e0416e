// The ZeroMQ ROUTER front of the daemon. Every request is handled
// concurrently (a slow generation never holds up a ping or a cached answer);
// replies go back to the identity that asked, framed the way it asked (REQ
// or DEALER). Malformed input gets an error reply and the loop carries on.

import { Router } from "zeromq";
import type { Settings } from "../config/settings.js";
import type { Engine, RequestContext } from "../engine/engine.js";
import {
  cacheTouchParams,
  cancelParams,
  embedParams,
  encodeReply,
  emptyParams,
  generateParams,
  isStreamAck,
  METHODS,
  parseParams,
  parseRequest,
  ProtocolError,
  queueWaitParams,
  rerankParams,
  routerReplyFrames,
  unavailable,
  splitRouterFrames,
  STREAM_END_MARKER,
  templateAnalyzeParams,
  templateRenderParams,
  type Envelope,
  type Method,
  type Reply,
  type RequestEnvelope,
  type StatusResult,
} from "../protocol/index.js";
import { logger } from "../util/logger.js";
import { VERSION } from "../version.js";
import { WordChunker } from "./word-chunker.js";
import { StreamSession } from "./stream-session.js";
import { ADMIN_METHODS, adminTokenMatches } from "./admin-token.js";
import { CurveAuthenticator } from "./curve-authenticator.js";
import { routerSecurity } from "./transport-security.js";
import { analyzeTemplate, renderTemplate } from "../templates/prompt-template.js";
import type { QueueService } from "../queue/queue-service.js";
import { encodeVectorFrame, VectorFrameResult } from "../protocol/vector-frame.js";

export const DAEMON_VERSION = VERSION;

/** The L2-normalised mean of unit vectors (a zero mean stays zero). */
export function normalisedMean(vectors: readonly number[][]): number[] {
  const mean = new Array<number>(vectors[0]?.length ?? 0).fill(0);
  for (const vector of vectors) vector.forEach((x, i) => (mean[i]! += x / vectors.length));
  const norm = Math.hypot(...mean);
  return norm > 0 ? mean.map((x) => x / norm) : mean;
}

/** Frames larger than this make libzmq drop the connection; below it, oversize requests get an error reply. */
const HARD_MESSAGE_LIMIT_FACTOR = 4;
const SHUTDOWN_GRACE_MS = 5000;
/**
 * How long a reply gets to leave before the socket closes. libzmq can drop a
 * message that is still in the connection's encoder when the socket closes,
 * linger or not; without this, about one "shutdown" reply in eight was lost.
 */
const REPLY_FLUSH_MS = 250;
const WORK_METHODS = new Set<string>(["generate", "generate_iter", "embed", "embed_batch", "rerank", "queue_wait"]);

export interface ServerHooks {
  /** Called when a client asks the daemon to shut down. */
  onShutdownRequested(): void;
  /** The token admin methods must carry (admin-token.ts). */
  adminToken: string;
}

export class DaemonServer {
  private readonly router: Router;
  private readonly inFlight = new Map<string, AbortController>();
  private readonly streams = new Map<string, StreamSession>();
  /** Requests in flight per client identity. */
  private readonly peerLoad = new Map<string, number>();
  private sending: Promise<void> = Promise.resolve();
  private lastReplyAt = 0;
  private requests = 0;
  private cancelled = 0;
  private readonly startedAt = new Date();
  private loop: Promise<void> | undefined;
  private readonly authenticator: CurveAuthenticator | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly engine: Engine,
    private readonly hooks: ServerHooks,
    /** The async queue, when the daemon has a database to work it in. */
    private readonly queue?: QueueService,
  ) {
    this.router = new Router({
      linger: 0,
      maxMessageSize: settings.maxRequestBytes * HARD_MESSAGE_LIMIT_FACTOR,
      receiveHighWaterMark: 10_000,
      sendHighWaterMark: 10_000,
      ...routerSecurity(settings),
    });
    this.authenticator = settings.curveClientKeysFile ? new CurveAuthenticator(settings.curveClientKeysFile) : undefined;
  }

  get stats(): { requests: number; inFlight: number; startedAt: Date } {
    return { requests: this.requests, inFlight: this.inFlight.size, startedAt: this.startedAt };
  }

  async start(): Promise<void> {
    await this.authenticator?.start();
    await this.router.bind(this.settings.endpoint);
    logger().info({ endpoint: this.settings.endpoint }, "daemon listening");
    this.loop = this.receiveLoop();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.router) {
        this.dispatch(frames);
      }
    } catch (error) {
      if (!this.router.closed) logger().error({ error: (error as Error).message }, "receive loop failed");
    }
  }

  private dispatch(frames: Buffer[]): void {
    const envelope = splitRouterFrames(frames);
    if (envelope instanceof ProtocolError) {
      const identity = frames[0];
      if (identity) this.reply({ identity, delimited: frames[1]?.length === 0 }, { id: null, result: null, error: envelope.toWire() });
      return;
    }
    const peer = envelope.identity.toString("hex");
    const stream = this.streams.get(peer);
    if (isStreamAck(envelope.payload)) {
      stream?.acknowledge();
      return;
    }

    const parsed = parseRequest(envelope.payload, this.settings.maxRequestBytes);
    // A client whose only work is its stream and that sends a new request
    // instead of ACK has left the stream (SteadyText's REQ client does this):
    // end it. A client with other requests in flight multiplexes (a DEALER),
    // and a cancel names its own target: neither leaves the stream.
    if (stream && (!parsed.ok || parsed.request.method !== "cancel") && (this.peerLoad.get(peer) ?? 0) <= 1) {
      stream.abandon("the client sent a new request instead of ACK");
    }
    if (!parsed.ok) {
      this.reply(envelope, { id: parsed.id, result: null, error: parsed.error.toWire() });
      return;
    }
    this.requests++;
    // A database that talks to us is a database whose queue we serve.
    if (parsed.request.origin) this.queue?.serve(parsed.request.origin.database);
    void this.handle(envelope, peer, parsed.request);
  }

  private async handle(envelope: Envelope, peer: string, request: RequestEnvelope): Promise<void> {
    const method = request.method;
    if (!(METHODS as readonly string[]).includes(method)) {
      this.reply(envelope, { id: request.id, result: null, error: new ProtocolError("unknown_method", `Unknown method: ${method}`).toWire() });
      return;
    }
    if (ADMIN_METHODS.has(method) && !adminTokenMatches(this.hooks.adminToken, request.admin_token)) {
      this.reply(envelope, { id: request.id, result: null, error: new ProtocolError("forbidden", `${method} needs the daemon's admin token`).toWire() });
      return;
    }
    // Only work that a client may cancel is "in flight"; status and ping are answered at once.
    const flightKey = `${peer}:${String(request.id)}`;
    const controller = new AbortController();
    const cancellable = WORK_METHODS.has(method);
    if (cancellable) {
      this.inFlight.set(flightKey, controller);
      this.peerLoad.set(peer, (this.peerLoad.get(peer) ?? 0) + 1);
    }
    const ctx = {
      signal: controller.signal,
      database: request.origin?.database,
      user: request.origin?.user ?? undefined,
      rateLimited: request.origin?.rate_limited ?? undefined,
    };
    try {
      if (method === "generate_iter") {
        await this.stream(envelope, peer, request, controller, ctx);
        return;
      }
      const result = await this.call(method as Method, request, peer, ctx);
      if (result instanceof VectorFrameResult) this.reply(envelope, { id: request.id, result: result.header, error: null }, result.frame);
      else this.reply(envelope, { id: request.id, result, error: null });
      if (method === "shutdown") this.hooks.onShutdownRequested();
    } catch (error) {
      this.reply(envelope, { id: request.id, result: null, error: this.wireError(error, controller.signal) });
    } finally {
      if (cancellable) {
        this.inFlight.delete(flightKey);
        const load = (this.peerLoad.get(peer) ?? 1) - 1;
        if (load > 0) this.peerLoad.set(peer, load);
        else this.peerLoad.delete(peer);
      }
      if (controller.signal.aborted) this.cancelled++;
    }
  }

  private wireError(error: unknown, signal: AbortSignal): string {
    if (error instanceof ProtocolError) return error.toWire();
    if (signal.aborted) return new ProtocolError("cancelled", "the request was cancelled").toWire();
    logger().error({ error: error instanceof Error ? error.stack : String(error) }, "request failed");
    return new ProtocolError("internal", error instanceof Error ? error.message : String(error)).toWire();
  }

  private async call(method: Method, request: RequestEnvelope, peer: string, ctx: RequestContext & { signal: AbortSignal }): Promise<unknown> {
    const params = request.params;
    switch (method) {
      case "ping":
        parseParams(emptyParams, params);
        return "pong";
      case "status":
        return this.status();
      case "generate":
        return this.engine.generate(parseParams(generateParams, params), ctx);
      case "embed": {
        // A list gives one vector, the L2-normalised mean of the texts' embeddings, as SteadyText's daemon does.
        const p = parseParams(embedParams, params);
        const result = await this.engine.embed(p, ctx);
        const vector = typeof p.text_input === "string" ? (result as number[]) : normalisedMean(result as number[][]);
        return p.vector_encoding === "f32le" ? encodeVectorFrame([vector]) : vector;
      }
      case "embed_batch": {
        // Ours: one vector per text, in order (steadytext_embed_batch).
        const p = parseParams(embedParams, params);
        const result = await this.engine.embed(p, ctx);
        const vectors = (typeof p.text_input === "string" ? [result] : result) as number[][];
        return p.vector_encoding === "f32le" ? encodeVectorFrame(vectors) : vectors;
      }
      case "rerank": {
        const p = parseParams(rerankParams, params);
        const ranked = await this.engine.rerank(p, ctx);
        return p.return_scores ? ranked : ranked.map(([document]) => document);
      }
      case "cancel": {
        const { request_id } = parseParams(cancelParams, params);
        const target = this.inFlight.get(`${peer}:${String(request_id)}`);
        target?.abort(new ProtocolError("cancelled", "cancelled by the client"));
        return target !== undefined;
      }
      case "template_analyze":
        return analyzeTemplate(parseParams(templateAnalyzeParams, params).template);
      case "template_render": {
        const p = parseParams(templateRenderParams, params);
        return renderTemplate(p.template, p.variables, p.strict);
      }
      case "cache_touch":
        this.engine.touch(ctx.database, parseParams(cacheTouchParams, params).keys);
        return null;
      case "queue_wait": {
        const { request_id, timeout_ms } = parseParams(queueWaitParams, params);
        if (!this.queue) throw unavailable("the daemon has no database to watch: STEADYTEXT_PG_URL is not set");
        return this.queue.waitFor(ctx.database, request_id, timeout_ms, ctx.signal);
      }
      case "shutdown":
        return "shutdown initiated";
      case "generate_iter":
        throw new ProtocolError("internal", "generate_iter is handled as a stream");
    }
  }

  private async stream(envelope: Envelope, peer: string, request: RequestEnvelope, controller: AbortController, ctx: RequestContext): Promise<void> {
    const params = parseParams(generateParams, request.params);
    const session = new StreamSession(
      (token) => this.reply(envelope, { id: request.id, result: { token }, error: null }),
      this.settings.streamAckTimeoutMs,
    );
    this.streams.get(peer)?.abandon("a new stream started");
    this.streams.set(peer, session);
    session.onAbandon = (reason) => controller.abort(new ProtocolError("cancelled", reason));
    // A cancel (or shutdown) ends the stream too, even when its text is all computed and only waits for ACKs.
    controller.signal.addEventListener("abort", () => session.abandon("the request was cancelled"), { once: true });
    const chunker = new WordChunker((chunk) => session.push(chunk));
    try {
      await this.engine.generate(params, { ...ctx, signal: controller.signal }, (text) => chunker.push(text));
      chunker.end();
      await session.finish(STREAM_END_MARKER);
    } catch (error) {
      if (!session.abandoned) this.reply(envelope, { id: request.id, result: null, error: this.wireError(error, controller.signal) });
    } finally {
      if (this.streams.get(peer) === session) this.streams.delete(peer);
    }
  }

  status(): StatusResult {
    const mirror = this.engine.mirrorBacklog();
    return {
      daemon_id: this.settings.daemonId,
      version: DAEMON_VERSION,
      endpoint: this.settings.endpoint,
      pid: process.pid,
      started_at: this.startedAt.toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      requests: this.requests,
      in_flight: this.inFlight.size,
      cancelled: this.cancelled,
      compute: this.engine.host.knownCompute() ?? null,
      models: this.engine.host.modelStatus(),
      preload: this.engine.preloadState,
      ...(this.queue ? { queue: this.queue.stats() } : {}),
      ...(mirror ? { mirror } : {}),
    };
  }

  /** Send a reply; `vectorFrame` (asked for with vector_encoding "f32le") follows the JSON as its own frame. */
  private reply(envelope: Pick<Envelope, "identity" | "delimited">, reply: Reply, vectorFrame?: Buffer): void {
    const frames = routerReplyFrames(envelope, encodeReply(reply));
    if (vectorFrame) frames.push(vectorFrame);
    // zeromq.js allows one send at a time: chain them.
    this.sending = this.sending
      .then(async () => {
        await this.router.send(frames);
        this.lastReplyAt = Date.now();
      })
      .catch((error: unknown) => logger().warn({ error: (error as Error).message }, "reply could not be sent"));
  }

  /** Stop accepting requests, let running ones finish for a moment, then abort them. */
  async stop(): Promise<void> {
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const controller of this.inFlight.values()) controller.abort(new ProtocolError("cancelled", "the daemon is shutting down"));
    for (const stream of this.streams.values()) stream.abandon("the daemon is shutting down");
    await this.sending;
    // Replies just sent (the answer to "shutdown" itself) get a moment to leave.
    const sinceLastReply = Date.now() - this.lastReplyAt;
    if (sinceLastReply < REPLY_FLUSH_MS) await new Promise((r) => setTimeout(r, REPLY_FLUSH_MS - sinceLastReply));
    this.router.linger = 1000;
    this.router.close();
    await this.loop;
    await this.authenticator?.close();
  }
}
