// One pino logger for the process. The daemon logs JSON lines to stderr (or
// its log file when it runs in the background); the CLI stays quiet.

import { pino, type Logger } from "pino";

let current: Logger = pino({ level: process.env.STEADYTEXT_LOG_LEVEL ?? "warn", base: { service: "steadytext" } }, pino.destination(2));

export function logger(): Logger {
  return current;
}

/** Replace the process logger (the daemon does this at start-up with its own level and destination). */
export function configureLogger(level: string, destination: number | string = 2): Logger {
  current = pino(
    { level, base: { service: "steadytext", pid: process.pid } },
    pino.destination(typeof destination === "number" ? destination : { dest: destination, mkdir: true, sync: false }),
  );
  return current;
}
