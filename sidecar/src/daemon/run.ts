// Runs the daemon in this process until a shutdown request or a signal:
// test models (if asked), the Postgres mirror, the engine, the ROUTER socket,
// the PID file, and an orderly stop that loses no queued mirror writes.

import { join } from "node:path";
import { PgMirror, type Heartbeat } from "../cache/pg-mirror.js";
import type { Settings } from "../config/settings.js";
import { Engine } from "../engine/engine.js";
import { warmUp } from "../inference/warm-up.js";
import { ModelIdentities } from "../models/identity.js";
import { writeTestModels } from "../models/test-models/index.js";
import { configureLogger, logger } from "../util/logger.js";
import { QueueService } from "../queue/queue-service.js";
import { HttpApiServer } from "../http/http-server.js";
import { removePidFile, writePidFile } from "./pid-file.js";
import { DAEMON_VERSION, DaemonServer } from "./server.js";
import { establishAdminToken } from "./admin-token.js";

export interface RunOptions {
  /** Log to the log file instead of stderr (a background daemon has no terminal). */
  logToFile?: boolean;
}

export async function runDaemon(settings: Settings, options: RunOptions = {}): Promise<void> {
  configureLogger(settings.logLevel, options.logToFile ? settings.logFile : 2);
  const log = logger();

  if (settings.testModels) {
    const identities = new ModelIdentities(join(settings.cacheDir, "model-identities.json"));
    for (const model of await writeTestModels(settings.testModelDir)) await identities.remember(model.path, model.sha256);
    log.info({ dir: settings.testModelDir }, "using the tiny test models");
  }

  let server: DaemonServer | undefined;
  let http: HttpApiServer | undefined;
  let engine: Engine | undefined;
  const mirror: PgMirror | undefined = settings.pgUrl
    ? new PgMirror(settings.pgUrl, (): Heartbeat => ({
        daemonId: settings.daemonId,
        endpoint: settings.endpoint,
        version: DAEMON_VERSION,
        startedAt: server?.stats.startedAt ?? new Date(),
        models: (engine?.host.modelStatus() ?? []).filter((m) => m.loaded).map((m) => m.name),
        totalRequests: server?.stats.requests ?? 0,
      }))
    : undefined;
  engine = new Engine(settings, { mirror });
  const running = engine;
  const queue = settings.pgUrl ? new QueueService(settings.pgUrl, settings, running) : undefined;
  // A GPU backend opens before the socket does: one asked for by name that cannot run here stops the start, with its reason.
  const compute = settings.gpu === "off" ? undefined : await running.host.compute().catch(async (error: unknown) => {
    await mirror?.close();
    throw error;
  });

  let stopping: Promise<void> | undefined;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const stop = (reason: string) => {
    stopping ??= (async () => {
      log.info({ reason }, "daemon stopping");
      await queue?.stop();
      await http?.stop();
      await server?.stop();
      await mirror?.close();
      await running.close();
      await removePidFile(settings.pidFile);
      log.info("daemon stopped");
      log.flush();
      finished();
    })();
    return stopping;
  };

  server = new DaemonServer(settings, running, { onShutdownRequested: () => void stop("shutdown request"), adminToken: establishAdminToken(settings) }, queue);
  running.preload(settings.preload);
  await server.start();
  if (settings.http) {
    http = new HttpApiServer({ ...settings, http: settings.http }, running, DAEMON_VERSION);
    await http.start().catch(async (error: unknown) => {
      await server?.stop();
      await mirror?.close();
      throw error;
    });
  }
  queue?.start();
  await writePidFile(settings.pidFile);
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));

  // Tell the configured database which files the default selectors mean, so
  // SQL can find cached answers before the first request reaches us.
  for (const resolved of running.resolveDefaults()) {
    const sha256 = await running.host.identityIfPresent(resolved);
    if (sha256) mirror?.publishModel(undefined, resolved.selector, await running.host.resultIdentity(resolved.role, sha256), resolved.name);
  }
  if (compute && compute.backend !== "cpu") await warmUp(running.host, running.resolveDefaults());
  void mirror?.beat();
  log.info(
    {
      endpoint: settings.endpoint,
      http: http?.address() ?? null,
      testModels: settings.testModels,
      mirror: Boolean(mirror),
      queueWorker: Boolean(queue) && settings.queue.worker,
      backend: compute?.backend ?? "cpu",
      devices: compute?.devices ?? [],
    },
    "daemon ready",
  );
  await done;
}
