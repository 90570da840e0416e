// The secret that admin methods (shutdown) must carry: the daemon checks it
// itself, so a local user with a raw ZeroMQ socket cannot stop it. Given as
// STEADYTEXT_ADMIN_TOKEN (and to PostgreSQL as steadytext.daemon_admin_token)
// or generated at start; either way written to a mode-0600 file, where
// `st daemon stop` of the same OS user finds it.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Settings } from "../config/settings.js";

export const ADMIN_METHODS: ReadonlySet<string> = new Set(["shutdown"]);

/** The token this daemon accepts: the configured one, else the one a previous start kept, else a new one; written to the token file. */
export function establishAdminToken(settings: Settings): string {
  const token = settings.adminToken ?? readAdminToken(settings) ?? randomBytes(32).toString("hex");
  mkdirSync(dirname(settings.adminTokenFile), { recursive: true, mode: 0o700 });
  writeFileSync(settings.adminTokenFile, token, { mode: 0o600 });
  chmodSync(settings.adminTokenFile, 0o600);
  return token;
}

/** The token for a client: STEADYTEXT_ADMIN_TOKEN, else the daemon's token file (when this user may read it). */
export function readAdminToken(settings: Settings): string | undefined {
  if (settings.adminToken) return settings.adminToken;
  try {
    const token = readFileSync(settings.adminTokenFile, "utf8").trim();
    return token.length >= 16 ? token : undefined;
  } catch {
    return undefined;
  }
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from reply timings. */
export function adminTokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(given, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}
