// The short demo `npm run stack -- up` ends with: generation (twice, the
// same), an embedding, and a pgvector similarity search over rows that a
// trigger embedded on insert.

import type { PgCluster } from "./lib/pg-cluster.js";

const DOCUMENTS = [
  "Cats sleep for most of the day and hunt at night.",
  "A kitten is a young cat that plays with everything.",
  "The stock market fell sharply after the announcement.",
  "Interest rates and inflation move the bond market.",
  "PostgreSQL stores data in tables made of rows and columns.",
  "An index makes queries on large tables fast.",
];

/** Anything that opens a session on a database: a local cluster, or a server in a container. */
export type DemoTarget = Pick<PgCluster, "client">;

export async function runDemo(cluster: DemoTarget, database: string): Promise<void> {
  const client = await cluster.client(database);
  const show = (title: string) => console.log(`\n-- ${title}`);
  try {
    show("steadytext_generate, twice: the same text both times");
    const prompt = "Write one sentence about PostgreSQL.";
    const first = await client.query<{ text: string | null }>("SELECT steadytext_generate($1, 40) AS text", [prompt]);
    const second = await client.query<{ text: string | null }>("SELECT steadytext_generate($1, 40) AS text", [prompt]);
    console.log(JSON.stringify(first.rows[0]?.text));
    console.log(`identical: ${first.rows[0]?.text === second.rows[0]?.text}`);

    show("steadytext_embed: a unit vector(1024)");
    const embedding = await client.query<{ dims: number; norm: number }>(
      "SELECT vector_dims(e) AS dims, vector_norm(e) AS norm FROM steadytext_embed('hello world') AS e",
    );
    console.log(`dimensions ${embedding.rows[0]?.dims}, norm ${embedding.rows[0]?.norm.toFixed(6)}`);

    show("a trigger embeds rows on insert; pgvector finds the nearest");
    await client.query(`
      DROP TABLE IF EXISTS demo_documents;
      CREATE TABLE demo_documents (id serial PRIMARY KEY, body text NOT NULL, embedding vector(1024));
      CREATE OR REPLACE FUNCTION demo_embed_body() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.embedding := steadytext_embed(NEW.body);
        RETURN NEW;
      END $$;
      CREATE TRIGGER demo_documents_embed BEFORE INSERT OR UPDATE OF body ON demo_documents
        FOR EACH ROW EXECUTE FUNCTION demo_embed_body();`);
    await client.query("INSERT INTO demo_documents (body) SELECT unnest($1::text[])", [DOCUMENTS]);
    const query = "young cats playing";
    const nearest = await client.query<{ body: string; distance: number }>(
      `SELECT body, embedding <=> steadytext_embed($1) AS distance
         FROM demo_documents ORDER BY embedding <=> steadytext_embed($1) LIMIT 3`,
      [query],
    );
    console.log(`nearest to ${JSON.stringify(query)}:`);
    for (const row of nearest.rows) console.log(`  ${row.distance.toFixed(4)}  ${row.body}`);

    show("steadytext_daemon_status()");
    const status = await client.query("SELECT daemon_id, status, endpoint, uptime_seconds FROM steadytext_daemon_status()");
    console.log(status.rows[0]);
  } finally {
    await client.end();
  }
}
