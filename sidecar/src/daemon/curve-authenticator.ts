// Which clients may talk CURVE to the daemon. With
// STEADYTEXT_CURVE_CLIENT_KEYS_FILE set, a ZAP handler (ZeroMQ's
// authentication protocol, RFC 27, served on inproc://zeromq.zap.01 of the
// daemon's ZeroMQ context) admits only the client public keys that file
// lists, one Z85 key per line (a `#` at the start of a line or after white
// space starts a comment; `client.pub` from
// `st keys generate` is such a file). The file is read again whenever it
// changes, so keys are added or revoked without a restart.

import { readFileSync, statSync } from "node:fs";
import { Reply } from "zeromq";
import { logger } from "../util/logger.js";
import { Z85_KEY } from "./transport-security.js";

/** libzmq consults the handler bound here for every CURVE handshake in the context. */
const ZAP_ENDPOINT = "inproc://zeromq.zap.01";
const Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** Z85 text of a key given as raw bytes (ZAP hands the client's public key over as 32 bytes). */
export function z85Encode(bytes: Buffer): string {
  if (bytes.length % 4 !== 0) throw new Error("Z85 encodes whole 4-byte words only");
  let text = "";
  for (let offset = 0; offset < bytes.length; offset += 4) {
    let value = bytes.readUInt32BE(offset);
    let word = "";
    for (let i = 0; i < 5; i++) {
      word = Z85_ALPHABET[value % 85]! + word;
      value = Math.floor(value / 85);
    }
    text += word;
  }
  return text;
}

/** The Z85 keys a keys file lists; throws on a line that is not a key. */
export function parseClientKeys(text: string, path: string): Set<string> {
  const keys = new Set<string>();
  text.split("\n").forEach((raw, index) => {
    // "#" is a Z85 digit too: a comment starts a line, or follows the key after white space.
    const line = raw.trim().replace(/^#.*$|\s+#.*$/, "");
    if (line === "") return;
    if (!Z85_KEY.test(line)) throw new Error(`line ${index + 1} of ${path} is not a 40-character Z85 CURVE public key`);
    keys.add(line);
  });
  return keys;
}

/** The allow-list, read again when the file's size or modification time changes. */
class ClientKeys {
  private keys = new Set<string>();
  private version = "";

  constructor(private readonly path: string) {
    this.reload();
  }

  /** Reload if changed; a file that became unreadable or invalid keeps the last good list, loudly. */
  current(): Set<string> {
    try {
      this.reload();
    } catch (error) {
      logger().error({ error: (error as Error).message }, "CURVE client keys file unusable; keeping the keys read before");
    }
    return this.keys;
  }

  private reload(): void {
    const stat = statSync(this.path);
    const version = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
    if (version === this.version) return;
    this.keys = parseClientKeys(readFileSync(this.path, "utf8"), this.path);
    this.version = version;
    logger().info({ file: this.path, keys: this.keys.size }, "CURVE client keys loaded");
  }
}

/** Serves ZAP for the daemon's context: CURVE clients whose key is listed get in, all others are refused. */
export class CurveAuthenticator {
  private readonly socket = new Reply({ linger: 0 });
  private readonly keys: ClientKeys;
  private loop: Promise<void> | undefined;

  /** Throws when the keys file is missing or invalid: the daemon must not start open. */
  constructor(keysFile: string) {
    this.keys = new ClientKeys(keysFile);
  }

  /** Bind before the daemon's socket does, so that no handshake happens unchecked. */
  async start(): Promise<void> {
    await this.socket.bind(ZAP_ENDPOINT);
    this.loop = this.serve();
  }

  close(): Promise<void> {
    this.socket.close();
    return this.loop ?? Promise.resolve();
  }

  private async serve(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        await this.socket.send(this.answer(frames));
      }
    } catch (error) {
      if (!this.socket.closed) logger().error({ error: (error as Error).message }, "ZAP handler failed");
    }
  }

  /** RFC 27: [version, request id, domain, address, identity, mechanism, credentials…] → [version, request id, status, text, user, metadata]. */
  private answer(frames: Buffer[]): Array<string | Buffer> {
    const [version, requestId, , address, , mechanism, credential] = frames;
    const reply = (status: string, text: string, user = "") => [version ?? "1.0", requestId ?? "", status, text, user, ""];
    if (version?.toString() !== "1.0") return reply("400", "unsupported ZAP version");
    if (mechanism?.toString() !== "CURVE" || credential?.length !== 32) return reply("400", "only CURVE clients are admitted");
    const key = z85Encode(credential);
    if (!this.keys.current().has(key)) {
      logger().warn({ address: address?.toString(), key }, "refused a CURVE client whose key is not listed");
      return reply("400", "client key not allowed");
    }
    return reply("200", "OK", key);
  }
}
