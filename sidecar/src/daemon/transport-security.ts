// Who may talk to the daemon over the network: a loopback or ipc:// endpoint
// is local, anything else must use ZeroMQ CURVE (the daemon's secret key
// from STEADYTEXT_CURVE_SECRET_KEY_FILE, keys made by `st keys generate`)
// unless STEADYTEXT_ALLOW_INSECURE_REMOTE says plain TCP is wanted. Which
// client keys get in is curve-authenticator.ts's job.

import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { Settings } from "../config/settings.js";

/** Z85 text of a 32-byte CURVE key. */
export const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export function isLoopbackEndpoint(endpoint: string): boolean {
  if (endpoint.startsWith("ipc://") || endpoint.startsWith("inproc://")) return true;
  const match = /^tcp:\/\/(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(endpoint);
  const host = match?.[1] ?? match?.[2];
  if (!host) return false;
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** Read a Z85 key file (first line), or fail saying what is wrong. */
export function readCurveKey(path: string, what: string): string {
  const key = readFileSync(path, "utf8").split("\n")[0]!.trim();
  if (!Z85_KEY.test(key)) throw new Error(`${what} in ${path} is not a 40-character Z85 CURVE key`);
  return key;
}

/** The Router options for the configured endpoint; throws when a remote endpoint would be unprotected. */
export function routerSecurity(settings: Settings): { curveServer?: boolean; curveSecretKey?: string; zapDomain?: string } {
  if (settings.curveClientKeysFile && !settings.curveSecretKeyFile) {
    throw new Error("STEADYTEXT_CURVE_CLIENT_KEYS_FILE needs STEADYTEXT_CURVE_SECRET_KEY_FILE: client keys are checked in CURVE handshakes only");
  }
  if (settings.curveSecretKeyFile) {
    return { curveServer: true, curveSecretKey: readCurveKey(settings.curveSecretKeyFile, "the daemon's CURVE secret key"), zapDomain: "steadytext" };
  }
  if (isLoopbackEndpoint(settings.endpoint) || settings.allowInsecureRemote) return {};
  throw new Error(
    `refusing to listen on ${settings.endpoint} without CURVE keys: anyone on the network could use the daemon. ` +
      "Make keys with `st keys generate` and set STEADYTEXT_CURVE_SECRET_KEY_FILE, or set STEADYTEXT_ALLOW_INSECURE_REMOTE=1.",
  );
}
