// The daemon's OpenAI-compatible HTTP front (node:http, no framework: six
// routes do not need one). It listens where STEADYTEXT_HTTP_ADDR says
// (loopback unless a host is named), checks the bearer token when one is
// configured, validates every body with zod, and answers errors in OpenAI's
// shape. A client that goes away aborts its request.

import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { z } from "zod";
import type { HttpSettings, Settings } from "../config/settings.js";
import type { Engine } from "../engine/engine.js";
import { logger } from "../util/logger.js";
import { OpenAiApi, type EventSink } from "./openai-api.js";
import { HttpError, toHttpError } from "./openai-errors.js";
import { chatCompletionBody, completionBody, embeddingBody, rerankBody } from "./openai-schemas.js";

interface Route {
  /** Takes the parsed body; with `events`, streams server-sent events instead of returning a value. */
  handle(body: unknown, signal: AbortSignal, events: EventSink | undefined): Promise<unknown>;
  streams?: (body: unknown) => boolean;
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.join(".") || null;
  const message = issue.code === "unrecognized_keys" || issue.path.length === 0 ? issue.message : `${param}: ${issue.message}`;
  throw new HttpError(400, message, "invalid_request_error", null, param);
}

const wantsStream = (body: unknown) => typeof body === "object" && body !== null && (body as { stream?: unknown }).stream === true;

export class HttpApiServer {
  private readonly server: Server;
  private readonly api: OpenAiApi;
  private readonly tokenDigest: Buffer | undefined;
  private readonly routes: Record<string, Route>;

  constructor(
    private readonly settings: Settings & { http: HttpSettings },
    engine: Engine,
    private readonly version: string,
  ) {
    this.api = new OpenAiApi(settings, engine);
    this.tokenDigest = settings.http.token === undefined ? undefined : digest(settings.http.token);
    this.routes = {
      "POST /v1/completions": {
        handle: (body, signal, events) => this.api.completion(parseBody(completionBody, body), signal, events),
        streams: wantsStream,
      },
      "POST /v1/chat/completions": {
        handle: (body, signal, events) => this.api.chatCompletion(parseBody(chatCompletionBody, body), signal, events),
        streams: wantsStream,
      },
      "POST /v1/embeddings": { handle: (body, signal) => this.api.embeddings(parseBody(embeddingBody, body), signal) },
      "POST /v1/rerank": { handle: (body, signal) => this.api.rerank(parseBody(rerankBody, body), signal) },
      "GET /v1/models": { handle: async () => ({ object: "list", data: this.api.models() }) },
    };
    this.server = createServer((req, res) => void this.serve(req, res));
    // Keep-alive connections must not hold the daemon open at shutdown.
    this.server.keepAliveTimeout = 5000;
  }

  /** Where it listens (the port is the real one when 0 was asked for). */
  address(): { host: string; port: number } {
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  async start(): Promise<void> {
    const { host, port } = this.settings.http;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    logger().info({ ...this.address(), auth: this.tokenDigest !== undefined }, "HTTP API listening");
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.tokenDigest === undefined) return true;
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    return match !== null && timingSafeEqual(digest(match[1]!.trim()), this.tokenDigest);
  }

  private async readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.settings.maxRequestBytes;
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) throw new HttpError(413, `The request body is larger than ${limit} bytes`, "invalid_request_error", "request_too_large");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new HttpError(413, `The request body is larger than ${limit} bytes`, "invalid_request_error", "request_too_large");
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") throw new HttpError(400, "The request has no body: send a JSON object", "invalid_request_error");
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(400, "We could not parse the JSON body of your request", "invalid_request_error");
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    // "close" on the response before it finished means the client went away.
    res.once("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "") || "/";
    try {
      if (path === "/health" || path === "/v1/health") {
        if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, `Method ${req.method ?? "?"} not allowed on ${path}`);
        this.sendJson(res, 200, { status: "ok", version: this.version });
        return;
      }
      const route = this.routes[`${req.method ?? ""} ${path}`];
      if (!route) {
        const known = Object.keys(this.routes).some((key) => key.endsWith(` ${path}`));
        throw known
          ? new HttpError(405, `Method ${req.method ?? "?"} not allowed on ${path}`)
          : new HttpError(404, `Unknown request URL: ${req.method ?? "?"} ${path}`, "invalid_request_error", "unknown_url");
      }
      if (!this.authorized(req)) {
        throw new HttpError(401, "Incorrect API key provided: send 'Authorization: Bearer <STEADYTEXT_HTTP_TOKEN>'", "invalid_request_error", "invalid_api_key");
      }
      const body = req.method === "POST" ? await this.readJson(req) : undefined;
      if (route.streams?.(body)) {
        await this.stream(res, route, body, controller.signal);
        return;
      }
      this.sendJson(res, 200, await route.handle(body, controller.signal, undefined));
    } catch (error) {
      const httpError = toHttpError(error);
      if (httpError.status >= 500 && !controller.signal.aborted) logger().warn({ path, error: httpError.message }, "HTTP request failed");
      if (!res.headersSent) this.sendJson(res, httpError.status, httpError.body());
      else res.end();
    }
  }

  /** Server-sent events: headers go out at the first event, so an error before any is still a plain JSON error. */
  private async stream(res: ServerResponse, route: Route, body: unknown, signal: AbortSignal): Promise<void> {
    const send = (data: unknown) => {
      if (!res.headersSent) res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    try {
      await route.handle(body, signal, send);
    } catch (error) {
      if (!res.headersSent) throw error;
      // Mid-stream, the error is one more event in OpenAI's shape; the client sees it before [DONE].
      if (!signal.aborted) send(toHttpError(error).body());
    }
    res.end("data: [DONE]\n\n");
  }

  private sendJson(res: ServerResponse, status: number, value: unknown): void {
    const payload = Buffer.from(JSON.stringify(value), "utf8");
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": payload.length });
    res.end(payload);
  }
}
