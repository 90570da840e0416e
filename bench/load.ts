// npm run test:load: 64 concurrent backends mixing cache hits, misses,
// streams and batches for a fixed time (STEADYTEXT_LOAD_SECONDS, default
// 240) against one daemon. Pass: zero errors and zero NULLs, and memory
// flat: the backends' and the daemon's private resident memory in the last minute
// no more than 10% above the second minute. Prints the figures; not part of
// npm test (it takes minutes).

import { readFile } from "node:fs/promises";
import { TestStack } from "../test/harness/test-stack.js";

const BACKENDS = Number(process.env.STEADYTEXT_LOAD_BACKENDS ?? 64);
const SECONDS = Number(process.env.STEADYTEXT_LOAD_SECONDS ?? 240);
const SAMPLE_MS = 5000;
const TOLERANCE = 1.1;

/**
 * A process's private resident memory (RssAnon): VmRSS also counts the pages
 * of shared_buffers a backend has touched, which grows with the data it
 * reads, not with leaks.
 */
async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

const stack = await TestStack.start();
try {
  const sessions = await Promise.all(Array.from({ length: BACKENDS }, () => stack.connect()));
  const backendPids = await Promise.all(sessions.map(async (s) => (await s.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid));
  const hotPrompts = Array.from({ length: 8 }, (_, i) => `hot prompt ${i}`);
  for (const prompt of hotPrompts) await stack.query("SELECT steadytext_generate($1, 16)", [prompt]);

  const counts = { hit: 0, miss: 0, stream: 0, batch: 0, errors: 0, nulls: 0 };
  const errors: string[] = [];
  const endAt = Date.now() + SECONDS * 1000;
  let sequence = 0;

  async function worker(index: number): Promise<void> {
    const session = sessions[index]!;
    while (Date.now() < endAt) {
      const kind = (index + sequence++) % 4;
      try {
        if (kind === 0) {
          const { rows } = await session.query("SELECT steadytext_generate($1, 16) AS v", [hotPrompts[sequence % hotPrompts.length]]);
          if (rows[0].v === null) counts.nulls++;
          counts.hit++;
        } else if (kind === 1) {
          const { rows } = await session.query("SELECT steadytext_generate($1, 16) AS v", [`miss ${index} ${sequence}`]);
          if (rows[0].v === null) counts.nulls++;
          counts.miss++;
        } else if (kind === 2) {
          const { rows } = await session.query("SELECT count(*)::int AS n FROM steadytext_generate_stream($1, 16) AS s", [`stream ${index} ${sequence % 50}`]);
          if (rows[0].n === 0) counts.nulls++;
          counts.stream++;
        } else {
          const texts = Array.from({ length: 8 }, (_, i) => `batch ${index} ${sequence % 100} ${i}`);
          const { rows } = await session.query("SELECT count(embedding)::int AS n FROM steadytext_embed_batch($1::text[])", [texts]);
          if (rows[0].n !== texts.length) counts.nulls++;
          counts.batch++;
        }
      } catch (error) {
        counts.errors++;
        if (errors.length < 5) errors.push((error as Error).message);
      }
    }
  }

  const samples: Array<{ t: number; backendsKb: number; daemonKb: number }> = [];
  const started = Date.now();
  const sampler = setInterval(async () => {
    const backendsKb = (await Promise.all(backendPids.map(rssKb))).reduce((a, b) => a + b, 0);
    samples.push({ t: (Date.now() - started) / 1000, backendsKb, daemonKb: await rssKb(stack.sidecar!.child.pid!) });
  }, SAMPLE_MS);
  await Promise.all(sessions.map((_, i) => worker(i)));
  clearInterval(sampler);

  const window = (from: number, to: number) => samples.filter((s) => s.t >= from && s.t < to);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const second = window(60, 120);
  const last = window(SECONDS - 60, SECONDS + 1);
  const figures = {
    backends: BACKENDS,
    seconds: SECONDS,
    calls: counts,
    callsPerSecond: Number(((counts.hit + counts.miss + counts.stream + counts.batch) / SECONDS).toFixed(1)),
    backendsRssMb: { secondMinute: Number((mean(second.map((s) => s.backendsKb)) / 1024).toFixed(1)), lastMinute: Number((mean(last.map((s) => s.backendsKb)) / 1024).toFixed(1)) },
    daemonRssMb: { secondMinute: Number((mean(second.map((s) => s.daemonKb)) / 1024).toFixed(1)), lastMinute: Number((mean(last.map((s) => s.daemonKb)) / 1024).toFixed(1)) },
    firstErrors: errors,
  };
  console.log(JSON.stringify(figures, null, 2));
  const grew = (m: { secondMinute: number; lastMinute: number }) => m.secondMinute > 0 && m.lastMinute > m.secondMinute * TOLERANCE;
  const failed = counts.errors > 0 || counts.nulls > 0 || grew(figures.backendsRssMb) || grew(figures.daemonRssMb) || SECONDS < 180;
  if (SECONDS < 180) console.log("(memory flatness needs at least 3 minutes: STEADYTEXT_LOAD_SECONDS >= 180)");
  process.exitCode = failed ? 1 : 0;
} finally {
  await stack.stop();
}
