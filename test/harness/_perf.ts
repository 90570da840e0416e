import { TestStack } from "./test-stack.js";
const stack = await TestStack.start({ sidecarEnv: { STEADYTEXT_LOG_LEVEL: "warn", ...(process.env.EXTRA ? JSON.parse(process.env.EXTRA) : {}) } });
try {
  await stack.query("SELECT count(*) FROM steadytext_embed_batch(ARRAY['warm'], false)");
  let t0 = performance.now();
  await stack.query("SELECT count(*) FROM steadytext_embed_batch(ARRAY(SELECT 'batch row ' || g FROM generate_series(1, 3000) g), false)");
  const batch = performance.now() - t0;
  await stack.query("CREATE TABLE r (id int PRIMARY KEY, body text)");
  await stack.query("INSERT INTO r SELECT g, 'queue row ' || g FROM generate_series(1, 3000) g");
  t0 = performance.now();
  await stack.query("SELECT steadytext_auto_embed('r', 'body', create_index := false)");
  await stack.waitFor(async () => Number((await stack.query<{ n: string }>("SELECT rows_embedded AS n FROM steadytext_auto_embed_pipelines"))[0]!.n) >= 3000, 600_000);
  const backfill = performance.now() - t0;
  console.log(`batch ${(3000 / batch * 1000).toFixed(0)} rows/s, backfill ${(3000 / backfill * 1000).toFixed(0)} rows/s, ratio ${(batch / backfill).toFixed(2)}`);
} finally { await stack.stop(); }
