// Shared CLI option parsing: numbers are checked here so a bad flag is a
// clear usage error, and connection flags become STEADYTEXT_* variables.

import { InvalidArgumentError } from "commander";

export interface ConnectionFlags {
  host?: string;
  port?: number;
  endpoint?: string;
}

export function parseInteger(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`'${value}' is not a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

export const parsePort = parseInteger(1, 65535);

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number`);
  return n;
}

/** process.env with the connection flags (and any extra variables) applied. */
export function withEnvironment(flags: ConnectionFlags, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (flags.host !== undefined) env.STEADYTEXT_DAEMON_HOST = flags.host;
  if (flags.port !== undefined) env.STEADYTEXT_DAEMON_PORT = String(flags.port);
  if (flags.endpoint !== undefined) env.STEADYTEXT_DAEMON_ENDPOINT = flags.endpoint;
  return env;
}
