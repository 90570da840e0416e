// A daemon on a non-loopback endpoint: it will not start without CURVE keys
// unless plain TCP is explicitly allowed; with keys (made by `st keys
// generate`), a client without them gets nothing and PostgreSQL, given the
// daemon's public key and its own secret key by a superuser, gets answers;
// with a client allow-list, only the keys it lists get in.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { curveKeyPair } from "zeromq";
import { DaemonClient } from "../../sidecar/src/client/daemon-client.js";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

const ST = resolve("sidecar/bin/st.js");
let stack: TestStack;

before(async () => {
  stack = await TestStack.start({ sidecar: false });
});
after(() => stack.stop());

async function remoteOptions(env: Record<string, string> = {}) {
  const port = await freePort();
  return {
    ...stack.sidecarOptions({ STEADYTEXT_DAEMON_ENDPOINT: `tcp://0.0.0.0:${port}`, ...env }, port),
    connectEndpoint: `tcp://127.0.0.1:${port}`,
    stderr: "capture" as const,
  };
}

test("a daemon on a non-loopback endpoint refuses to start without CURVE keys", async () => {
  await assert.rejects(SidecarProcess.start(await remoteOptions(), 30_000), /exited with code/);
});

test("with STEADYTEXT_ALLOW_INSECURE_REMOTE=1 it starts on plain TCP, as asked", async () => {
  const daemon = await SidecarProcess.start(await remoteOptions({ STEADYTEXT_ALLOW_INSECURE_REMOTE: "1" }));
  const client = daemon.client(5000);
  try {
    assert.equal(await client.request("ping"), "pong");
  } finally {
    await client.close();
    await daemon.stop();
  }
});

test("with keys from `st keys generate`: no keys, no answer; PostgreSQL with the keys gets answers", { timeout: 180_000 }, async () => {
  const keyDir = join(stack.dir, "curve");
  await promisify(execFile)(process.execPath, [ST, "keys", "generate", "--dir", keyDir]);
  const serverPublicKey = (await readFile(join(keyDir, "server.pub"), "utf8")).trim();
  const publicKey = (await readFile(join(keyDir, "client.pub"), "utf8")).trim();
  const secretKey = (await readFile(join(keyDir, "client.key"), "utf8")).trim();
  const options = { ...(await remoteOptions({ STEADYTEXT_CURVE_SECRET_KEY_FILE: join(keyDir, "server.key") })), curve: { serverPublicKey, publicKey, secretKey } };
  const daemon = await SidecarProcess.start(options);
  try {
    const keyless = new DaemonClient(daemon.endpoint, 1500);
    try {
      // The handshake never completes: the send cannot go (EAGAIN) or no reply comes (timeout).
      await assert.rejects(keyless.request("ping"), (error: { code?: string }) => error.code === "EAGAIN" || error.code === "timeout");
    } finally {
      await keyless.close();
    }
    const session = await stack.connect();
    await session.query(`SET steadytext.daemon_endpoint = '${daemon.endpoint}'`);
    await session.query("SET steadytext.connect_timeout_ms = 1500");
    assert.equal((await session.query("SELECT steadytext_generate('over CURVE', 6) AS g")).rows[0].g, null, "without keys: unavailable");

    await stack.cluster.chownToServer(keyDir);
    await stack.cluster.chownToServer(join(keyDir, "client.key"));
    const secure = await stack.connect();
    await secure.query(`SET steadytext.daemon_endpoint = '${daemon.endpoint}'`);
    await secure.query(`SET steadytext.daemon_curve_public_key = '${serverPublicKey}'`);
    await secure.query(`SET steadytext.curve_client_key_file = '${join(keyDir, "client.key")}'`);
    const text = (await secure.query("SELECT steadytext_generate('over CURVE', 6) AS g")).rows[0].g as string | null;
    assert.equal(typeof text, "string");
    const client = daemon.client(30_000);
    try {
      assert.equal(text, await client.request("generate", { prompt: "over CURVE", max_new_tokens: 6 }));
    } finally {
      await client.close();
    }
  } finally {
    await daemon.stop();
  }
});

test("with STEADYTEXT_CURVE_CLIENT_KEYS_FILE only listed client keys get in, and a key added to the file gets in without a restart", { timeout: 180_000 }, async () => {
  const keyDir = join(stack.dir, "curve-allow-list");
  await promisify(execFile)(process.execPath, [ST, "keys", "generate", "--dir", keyDir]);
  const serverPublicKey = (await readFile(join(keyDir, "server.pub"), "utf8")).trim();
  const listed = { serverPublicKey, publicKey: (await readFile(join(keyDir, "client.pub"), "utf8")).trim(), secretKey: (await readFile(join(keyDir, "client.key"), "utf8")).trim() };
  const unlisted = { serverPublicKey, ...curveKeyPair() };
  const allowList = join(keyDir, "clients.pub");
  await writeFile(allowList, `# PostgreSQL\n${listed.publicKey}\n`);
  const daemon = await SidecarProcess.start({
    ...(await remoteOptions({ STEADYTEXT_CURVE_SECRET_KEY_FILE: join(keyDir, "server.key"), STEADYTEXT_CURVE_CLIENT_KEYS_FILE: allowList })),
    curve: listed,
  });
  const ping = async (keys: typeof listed) => {
    const client = new DaemonClient(daemon.endpoint, 1500, keys);
    try {
      return await client.request("ping");
    } finally {
      await client.close();
    }
  };
  try {
    assert.equal(await ping(listed), "pong");
    // A complete CURVE handshake with a key the daemon does not list is refused (ZAP 400): nothing goes through.
    await assert.rejects(ping(unlisted), (error: { code?: string }) => error.code === "EAGAIN" || error.code === "timeout");
    const refusals = daemon.log.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as { msg: string; key?: string });
    assert.ok(refusals.some((entry) => entry.msg === "refused a CURVE client whose key is not listed" && entry.key === unlisted.publicKey), daemon.log);

    await stack.cluster.chownToServer(keyDir);
    await stack.cluster.chownToServer(join(keyDir, "client.key"));
    const session = await stack.connect();
    await session.query(`SET steadytext.daemon_endpoint = '${daemon.endpoint}'`);
    await session.query(`SET steadytext.daemon_curve_public_key = '${serverPublicKey}'`);
    await session.query(`SET steadytext.curve_client_key_file = '${join(keyDir, "client.key")}'`);
    assert.equal(typeof (await session.query("SELECT steadytext_generate('allowed over CURVE', 6) AS g")).rows[0].g, "string");

    await appendFile(allowList, `${unlisted.publicKey}\n`);
    assert.equal(await ping(unlisted), "pong");
  } finally {
    await daemon.stop();
  }
});
