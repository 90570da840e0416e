// One version everywhere: package.json (the daemon's status and `st --version`
// read it), the extension's control file, its install script's name and
// steadytext_version().

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { DAEMON_VERSION } from "../src/daemon/server.js";

const root = new URL("../../", import.meta.url);

test("the daemon, the control file, the install script and steadytext_version() state package.json's version", () => {
  const version = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string }).version;
  assert.equal(DAEMON_VERSION, version);
  assert.match(readFileSync(new URL("extension/pg_steadytext.control", root), "utf8"), new RegExp(`^default_version = '${version}'$`, "m"));
  const scripts = readdirSync(new URL("sql/", root)).filter((f) => f.startsWith("pg_steadytext--"));
  assert.deepEqual(scripts, [`pg_steadytext--${version}.sql`]);
  const install = readFileSync(new URL(`sql/${scripts[0]}`, root), "utf8");
  assert.match(install, new RegExp(`steadytext_version\\(\\)\\s+RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS \\$\\$ SELECT '${version}'::text \\$\\$`));
});

test("every default rerank task in the install script is the protocol's DEFAULT_RERANK_TASK", async () => {
  const { DEFAULT_RERANK_TASK } = await import("../src/protocol/messages.js");
  const scripts = readdirSync(new URL("sql/", root)).filter((f) => f.startsWith("pg_steadytext--"));
  const install = readFileSync(new URL(`sql/${scripts[0]}`, root), "utf8");
  const tasks = [...install.matchAll(/'(Given a [^']*)'/g)].map((m) => m[1]);
  assert.ok(tasks.length > 0);
  assert.deepEqual([...new Set(tasks)], [DEFAULT_RERANK_TASK]);
});
