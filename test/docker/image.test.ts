// Dockerfile.postgres as a new user runs it: each image (built by
// scripts/test-docker.sh, named in STEADYTEXT_DOCKER_IMAGES) is started
// through testcontainers with only the documented flags, and then must give a
// working database from outside the container: password login, the extension
// created by the init script, the sidecar beside PostgreSQL answering
// generation and embeddings with the test models, the whole pgTAP suite and
// the demo.

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { runDemo } from "../../scripts/demo.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const PGTAP_DIR = join(ROOT, "test", "pgtap");
const PASSWORD = "steadytext-docker-test";
const DATABASE = "test";
const images = (process.env.STEADYTEXT_DOCKER_IMAGES ?? "").split(/\s+/).filter((name) => name !== "");
// The pgTAP extension's files (plain SQL) from this machine's PostgreSQL, copied into each container for the suite.
const pgtapFiles = (process.env.STEADYTEXT_PGTAP_FILES ?? "").split(/\s+/).filter((name) => name !== "");

if (images.length === 0) throw new Error("STEADYTEXT_DOCKER_IMAGES names no image: run this through `npm run test:docker`");

for (const image of images) {
  describe(`the image ${image}, started as the README says`, () => {
    let container: StartedTestContainer;

    const connect = async (password = PASSWORD, database = DATABASE): Promise<pg.Client> => {
      const client = new pg.Client({ host: container.getHost(), port: container.getMappedPort(5432), user: "postgres", password, database });
      await client.connect();
      return client;
    };
    const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => {
      const client = await connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end();
      }
    };

    before(async () => {
      container = await new GenericContainer(image)
        .withEnvironment({ POSTGRES_PASSWORD: PASSWORD, POSTGRES_DB: DATABASE, STEADYTEXT_TEST_MODELS: "1" })
        .withExposedPorts(5432)
        .withWaitStrategy(Wait.forHealthCheck())
        .withStartupTimeout(180_000)
        .start();
    });

    after(async () => {
      await container?.stop({ timeout: 10_000 });
    });

    it("is reported healthy by its own healthcheck: PostgreSQL accepts connections and the sidecar answers", async () => {
      const probe = await container.exec(["steadytext-healthcheck.sh"]);
      assert.equal(probe.exitCode, 0, probe.output);
    });

    it("accepts a password login from outside the container and refuses a wrong password", async () => {
      const rows = await query<{ user: string }>("SELECT current_user AS user");
      assert.equal(rows[0]?.user, "postgres");
      await assert.rejects(connect("not-the-password"), /password authentication failed/);
    });

    it("creates pg_steadytext (and pgvector) in POSTGRES_DB on first start, through the init script", async () => {
      const rows = await query<{ extname: string }>("SELECT extname FROM pg_extension WHERE extname IN ('pg_steadytext', 'vector') ORDER BY 1");
      assert.deepEqual(rows.map((r) => r.extname), ["pg_steadytext", "vector"]);
    });

    it("runs the sidecar beside PostgreSQL on the container's loopback, and it reports healthy", async () => {
      const rows = await query<{ status: string; endpoint: string }>("SELECT status, endpoint FROM steadytext_daemon_status()");
      assert.deepEqual(rows[0], { status: "healthy", endpoint: "tcp://127.0.0.1:5557" });
    });

    it("starts the sidecar again when it stops, and answers as before", async () => {
      const sql = "SELECT steadytext_generate('Restarted or not, the same text.', 16) AS text";
      const [before] = await query<{ text: string | null }>(sql);
      const stopped = await container.exec(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "st", "daemon", "stop"]);
      assert.equal(stopped.exitCode, 0, stopped.output);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const probe = await container.exec(["steadytext-healthcheck.sh"]);
        if (probe.exitCode === 0) break;
        assert.ok(Date.now() < deadline, "the sidecar did not come back within 60 s");
        await new Promise((r) => setTimeout(r, 250));
      }
      const [after] = await query<{ text: string | null }>("SELECT steadytext_generate('Restarted or not, the same text.', 16, false) AS text");
      assert.equal(after?.text, before?.text);
    });

    it("knows steadytext.* settings in every session, so ALTER SYSTEM can set them", async () => {
      await query("ALTER SYSTEM SET steadytext.daemon_host = '127.0.0.1'");
      await query("SELECT pg_reload_conf()");
      const [row] = await query<{ host: string }>("SELECT current_setting('steadytext.daemon_host') AS host");
      assert.equal(row?.host, "127.0.0.1");
      await query("ALTER SYSTEM RESET steadytext.daemon_host");
      await query("SELECT pg_reload_conf()");
    });

    it("answers steadytext_generate with the same text twice, from the test models", async () => {
      const sql = "SELECT steadytext_generate('Write one sentence about containers.', 24) AS text";
      const [first] = await query<{ text: string | null }>(sql);
      const [second] = await query<{ text: string | null }>(sql);
      assert.equal(typeof first?.text, "string");
      assert.notEqual(first?.text, "");
      assert.equal(second?.text, first?.text);
    });

    it("answers steadytext_embed with a 1024-dimensional unit vector", async () => {
      const [row] = await query<{ dims: number; norm: number }>(
        "SELECT vector_dims(e) AS dims, vector_norm(e) AS norm FROM steadytext_embed('hello from a container') AS e",
      );
      assert.equal(row?.dims, 1024);
      assert.ok(Math.abs((row?.norm ?? 0) - 1) < 1e-5, `norm ${row?.norm}`);
    });

    it("warms new sessions up with pg_steadytext_warm in session_preload_libraries, built for this PostgreSQL", async () => {
      await query(`CREATE ROLE st_warm LOGIN PASSWORD '${PASSWORD}'`);
      await query("ALTER ROLE st_warm SET session_preload_libraries = 'pg_steadytext_warm'");
      const client = new pg.Client({
        host: container.getHost(), port: container.getMappedPort(5432), user: "st_warm", password: PASSWORD, database: DATABASE,
        options: "-c client_min_messages=debug1",
      });
      const notices: string[] = [];
      client.on("notice", (n) => notices.push(n.message ?? ""));
      await client.connect();
      try {
        assert.ok(notices.some((m) => /^pg_steadytext: session warmed up .*3 tables read, [1-9]\d* functions resolved/.test(m)), notices.join("\n"));
        const [row] = (await client.query<{ text: string | null }>("SELECT steadytext_generate('Write one sentence about containers.', 24) AS text")).rows;
        const [expected] = await query<{ text: string | null }>("SELECT steadytext_generate('Write one sentence about containers.', 24) AS text");
        assert.equal(row?.text, expected?.text);
      } finally {
        await client.end();
      }
    });

    it("passes the whole pgTAP suite", async () => {
      assert.ok(pgtapFiles.length > 0, "STEADYTEXT_PGTAP_FILES names pgTAP's extension files");
      const major = (await container.exec(["cat", "/usr/local/share/pg_steadytext_pg_major"])).output.trim();
      await container.copyFilesToContainer(
        pgtapFiles.map((source) => ({ source, target: `/usr/share/postgresql/${major}/extension/${source.split("/").pop() ?? ""}` })),
      );
      await query("CREATE EXTENSION IF NOT EXISTS pgtap");
      const files = readdirSync(PGTAP_DIR).filter((f) => f.endsWith(".sql")).sort().map((f) => join(PGTAP_DIR, f));
      const code = await new Promise<number>((resolveExit) => {
        const prove = spawn(
          "pg_prove",
          ["--host", container.getHost(), "--port", String(container.getMappedPort(5432)), "--username", "postgres", "--dbname", DATABASE, ...files],
          { stdio: "inherit", env: { ...process.env, PGPASSWORD: PASSWORD, PGOPTIONS: "--client-min-messages=warning" } },
        );
        prove.on("exit", (c) => resolveExit(c ?? 1));
      });
      assert.equal(code, 0, "pg_prove reported failures (above)");
    });

    it("refuses to initialize a database without POSTGRES_PASSWORD, saying what to set", async () => {
      // Started without it, the container logs the reason and exits (the wait ends at that line).
      const refused = await new GenericContainer(image)
        .withWaitStrategy(Wait.forLogMessage(/database is uninitialized and no password was given|Database is uninitialized and superuser password is not specified/i))
        .withStartupTimeout(60_000)
        .start();
      await refused.stop().catch(() => undefined);
    });

    it("runs the demo: generation, an embedding and a pgvector search over rows a trigger embedded", async () => {
      await runDemo({ client: (database = DATABASE) => connect(PASSWORD, database) }, DATABASE);
      const [row] = await query<{ embedded: number }>("SELECT count(*)::int AS embedded FROM demo_documents WHERE embedding IS NOT NULL");
      assert.equal(row?.embedded, 6);
    });
  });
}
