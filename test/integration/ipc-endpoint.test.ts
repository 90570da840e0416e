// The daemon on a unix socket (ipc://) instead of TCP, from SQL and from the
// TypeScript client.

import assert from "node:assert/strict";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { DATABASE, TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let daemon: SidecarProcess;
let endpoint: string;

before(async () => {
  stack = await TestStack.start({ sidecar: false });
  const socketDir = join(stack.dir, "ipc");
  await mkdir(socketDir, { recursive: true });
  await chmod(socketDir, 0o777);
  endpoint = `ipc://${join(socketDir, "steadytext.sock")}`;
  daemon = await SidecarProcess.start({ ...stack.sidecarOptions({ STEADYTEXT_DAEMON_ENDPOINT: endpoint }) });
  // The socket file must be reachable by the server's OS user.
  await chmod(join(socketDir, "steadytext.sock"), 0o777);
  await stack.query(`ALTER DATABASE ${DATABASE} SET steadytext.daemon_endpoint = '${endpoint}'`);
});

after(async () => {
  await daemon.stop();
  await stack.stop();
});

test("the TypeScript client talks to the daemon over ipc", async () => {
  assert.equal(daemon.endpoint, endpoint);
  const client = daemon.client(5000);
  try {
    assert.equal(await client.request("ping"), "pong");
  } finally {
    await client.close();
  }
});

test("SQL reaches the daemon over ipc, with the same answers as over TCP", async () => {
  const [viaIpc] = await stack.query<{ g: string; e: string; endpoint: string }>(
    "SELECT steadytext_generate('over a unix socket', 12, false) AS g, steadytext_embed('over a unix socket', false)::text AS e, _steadytext_endpoint() AS endpoint",
  );
  assert.equal(viaIpc!.endpoint, endpoint);
  assert.equal(typeof viaIpc!.g, "string");
  const tcp = await stack.startSidecar();
  try {
    const session = await stack.connect();
    await session.query("SET steadytext.daemon_endpoint = ''");
    await session.query(`SET steadytext.daemon_port = ${stack.daemonPort}`);
    const { rows } = await session.query("SELECT steadytext_generate('over a unix socket', 12, false) AS g, steadytext_embed('over a unix socket', false)::text AS e");
    assert.deepEqual(rows[0], { g: viaIpc!.g, e: viaIpc!.e });
  } finally {
    await tcp.stop();
  }
});
