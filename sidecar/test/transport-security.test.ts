// Who may reach the daemon: loopback endpoints are local, others need CURVE;
// the CURVE client allow-list reads Z85 keys the way libzmq writes them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { curveKeyPair } from "zeromq";
import { loadSettings } from "../src/config/settings.js";
import { parseClientKeys, z85Encode } from "../src/daemon/curve-authenticator.js";
import { isLoopbackEndpoint, routerSecurity } from "../src/daemon/transport-security.js";

test("Z85 encodes the ZeroMQ RFC 32 test vector as HelloWorld", () => {
  assert.equal(z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])), "HelloWorld");
  assert.throws(() => z85Encode(Buffer.alloc(3)), /whole 4-byte words/);
});

test("a keys file lists Z85 public keys, with comments and blank lines; anything else is refused with its line", () => {
  const { publicKey } = curveKeyPair();
  const keys = parseClientKeys(`# the database server\n${publicKey}  # pg1\n\n`, "clients.pub");
  assert.deepEqual([...keys], [publicKey]);
  // "#" is one of Z85's digits: a key holding it is a key, not a key and a comment.
  const hashed = "a#b$c%d&e(f)g*h+i-j.k/l:m<n=o>p?q@r[s]t{";
  assert.deepEqual([...parseClientKeys(`${hashed}\n#${publicKey}\n`, "clients.pub")], [hashed]);
  assert.throws(() => parseClientKeys(`${publicKey}\nnot a key\n`, "clients.pub"), /line 2 of clients\.pub is not a 40-character Z85/);
  assert.throws(() => parseClientKeys(`${publicKey.slice(0, 39)}"\n`, "clients.pub"), /line 1/);
});

test("loopback and ipc endpoints are local; a wildcard or a remote address is not", () => {
  for (const local of ["tcp://127.0.0.1:5555", "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/st.sock"]) assert.ok(isLoopbackEndpoint(local), local);
  for (const remote of ["tcp://0.0.0.0:5555", "tcp://10.0.0.1:5555", "tcp://*:5555", "tcp://127.0.0.1.evil.example:5555"]) assert.ok(!isLoopbackEndpoint(remote), remote);
});

test("client keys without the daemon's own CURVE key are a configuration error, not an open door", () => {
  const settings = loadSettings({ HOME: "/tmp", STEADYTEXT_CURVE_CLIENT_KEYS_FILE: "/tmp/clients.pub" });
  assert.throws(() => routerSecurity(settings), /needs STEADYTEXT_CURVE_SECRET_KEY_FILE/);
  const remote = loadSettings({ HOME: "/tmp", STEADYTEXT_DAEMON_ENDPOINT: "tcp://0.0.0.0:5555" });
  assert.throws(() => routerSecurity(remote), /refusing to listen on tcp:\/\/0\.0\.0\.0:5555 without CURVE keys/);
});
