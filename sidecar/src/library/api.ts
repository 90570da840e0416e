// The library's functions. Each call goes to a running daemon when there is
// one and to in-process models otherwise (as SteadyText does); configure()
// or STEADYTEXT_LIBRARY_BACKEND forces either. Errors of both paths become
// one SteadyTextError with the protocol's code.

import { DaemonError } from "../client/daemon-client.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { ProtocolError, type ErrorCode } from "../protocol/errors.js";
import { DaemonBackend, LocalBackend, type Backend, type PreloadOptions } from "./backends.js";
import {
  embedParamsFrom,
  generateParamsFrom,
  rerankParamsFrom,
  type Constraint,
  type EmbedOptions,
  type GenerateOptions,
  type RankedDocument,
  type RerankOptions,
} from "./options.js";

export type BackendChoice = "auto" | "daemon" | "local";

export interface LibraryConfig {
  /** "auto" (default): the daemon when one answers, else in-process models. */
  backend?: BackendChoice;
  /** STEADYTEXT_* variables to read instead of process.env (endpoint, cache dir, models...). */
  env?: NodeJS.ProcessEnv;
  /** How long "auto" waits for the daemon's answer to a ping (default 300 ms). */
  pingTimeoutMs?: number;
}

export class SteadyTextError extends Error {
  constructor(
    readonly code: ErrorCode | "timeout",
    message: string,
  ) {
    super(message);
    this.name = "SteadyTextError";
  }
}

let config: LibraryConfig = {};
let opening: Promise<Backend> | undefined;

/**
 * A daemon socket's pending receive keeps Node's event loop alive, so a
 * script that never calls close() would never exit: the socket is closed once
 * no call has used it for this long (the next call opens it again).
 */
const DAEMON_IDLE_CLOSE_MS = 1000;
let inFlight = 0;
let idleTimer: NodeJS.Timeout | undefined;

async function tracked<T>(current: Backend, work: () => Promise<T>): Promise<T> {
  inFlight++;
  clearTimeout(idleTimer);
  try {
    return await work();
  } finally {
    if (--inFlight === 0 && current.kind === "daemon") {
      idleTimer = setTimeout(() => {
        if (inFlight === 0 && opening !== undefined) void close();
      }, DAEMON_IDLE_CLOSE_MS);
      idleTimer.unref();
    }
  }
}

/** Choose the backend and settings for the calls that follow; closes the current backend. */
export async function configure(next: LibraryConfig): Promise<void> {
  await close();
  config = { ...next };
}

/** Release the daemon socket or the in-process models (the process can then exit). */
export async function close(): Promise<void> {
  clearTimeout(idleTimer);
  const current = opening;
  opening = undefined;
  if (current) await (await current.catch(() => undefined))?.close();
}

/** Which backend answers now: "daemon" or "local" (opens it if needed). */
export async function activeBackend(): Promise<"daemon" | "local"> {
  return (await backend()).kind;
}

function choice(settings: Settings): BackendChoice {
  return config.backend ?? settings.libraryBackend;
}

async function open(): Promise<Backend> {
  const settings = loadSettings(config.env ?? process.env);
  const wanted = choice(settings);
  if (wanted !== "local") {
    const daemon = await DaemonBackend.connect(settings, wanted === "daemon" ? 3000 : (config.pingTimeoutMs ?? 300));
    if (daemon) return daemon;
    if (wanted === "daemon") throw new SteadyTextError("unavailable", `no daemon answers on ${settings.endpoint} (backend "daemon" was asked for)`);
  }
  return LocalBackend.open(settings);
}

function backend(): Promise<Backend> {
  opening ??= open();
  const current = opening;
  // A failed open is not remembered: the next call tries again.
  current.catch(() => {
    if (opening === current) opening = undefined;
  });
  return current;
}

function translated(error: unknown): unknown {
  if (error instanceof DaemonError || error instanceof ProtocolError) return new SteadyTextError(error.code, error.message);
  return error;
}

/**
 * Run on the current backend. In "auto" mode a daemon that stops answering
 * (a timeout, not an error reply) is dropped and the call retried in-process.
 */
async function call<T>(work: (b: Backend) => Promise<T>): Promise<T> {
  const current = await backend();
  try {
    return await tracked(current, () => work(current));
  } catch (error) {
    if (current.kind === "daemon" && error instanceof DaemonError && error.code === "timeout" && choice(loadSettings(config.env ?? process.env)) === "auto") {
      await close();
      return call(work);
    }
    throw translated(error);
  }
}

/** The generated text for a prompt: the same prompt and options give the same text, every time. */
export function generate(prompt: string, options: GenerateOptions = {}): Promise<string> {
  return call((b) => b.generate(generateParamsFrom(prompt, options)));
}

/** The same text as generate(), in chunks that end at word boundaries, as they are produced. */
export async function* generateIter(prompt: string, options: GenerateOptions = {}): AsyncGenerator<string> {
  const current = await backend();
  inFlight++;
  clearTimeout(idleTimer);
  try {
    yield* current.stream(generateParamsFrom(prompt, options));
  } catch (error) {
    throw translated(error);
  } finally {
    // Counted as a call that has ended: the idle timer starts from here.
    inFlight--;
    await tracked(current, async () => undefined);
  }
}

function constrained(prompt: string, options: GenerateOptions, constraint: Constraint): Promise<string> {
  return call((b) => b.generate(generateParamsFrom(prompt, options, constraint)));
}

/** JSON text valid for the schema (a JSON Schema object or its text); parse it with JSON.parse. */
export function generateJson(prompt: string, schema: Record<string, unknown> | string, options: GenerateOptions = {}): Promise<string> {
  return constrained(prompt, options, { schema });
}

/** Text that matches the regular expression. */
export function generateRegex(prompt: string, regex: string, options: GenerateOptions = {}): Promise<string> {
  return constrained(prompt, options, { regex });
}

/** One of the choices. */
export function generateChoice<C extends string>(prompt: string, choices: readonly C[], options: GenerateOptions = {}): Promise<C> {
  return constrained(prompt, options, { choices: [...choices] }) as Promise<C>;
}

/** A 1024-dimensional unit vector for a text; one per text, in order, for a list. */
export function embed(text: string, options?: EmbedOptions): Promise<number[]>;
export function embed(texts: readonly string[], options?: EmbedOptions): Promise<number[][]>;
export function embed(input: string | readonly string[], options: EmbedOptions = {}): Promise<number[] | number[][]> {
  return call((b) => b.embed(embedParamsFrom(input, options)));
}

/** The documents with their relevance to the query, best first (ties keep the input order). */
export async function rerank(query: string, documents: readonly string[], options: RerankOptions = {}): Promise<RankedDocument[]> {
  const ranked = await call((b) => b.rerank(rerankParamsFrom(query, documents, options)));
  return ranked.map(([document, score]) => ({ document, score }));
}

/** Load the models now rather than at the first call (in-process); with a daemon, check that it answers. */
export function preloadModels(options: PreloadOptions = {}): Promise<void> {
  return call((b) => b.preload(options));
}
