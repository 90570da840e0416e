// st cache stats|clear|path|export|import: the sidecar's local cache file. (The Postgres
// mirror is managed from SQL: steadytext_cache_stats(), _clear(), eviction.)

import type { Command } from "commander";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { z } from "zod";
import { LocalCache, CACHE_NAMES, type CacheName } from "../cache/local-cache.js";
import { loadSettings } from "../config/settings.js";

/** One line of an export file: which cache, the key, the value as base64. */
const exportLine = z.object({
  cache: z.enum(CACHE_NAMES as [CacheName, ...CacheName[]]),
  key: z.string().regex(/^[0-9a-f]{64}$/, "key must be a sha256 hex string"),
  value: z.base64(),
});

function openCache(): LocalCache {
  const settings = loadSettings();
  return new LocalCache({ path: join(settings.cacheDir, "caches", "steadytext-cache.sqlite3"), limits: settings.cacheLimits });
}

export function registerCacheCommands(program: Command): void {
  const cache = program.command("cache").description("inspect or clear the sidecar's result cache");
  cache
    .command("stats")
    .option("--json", "print JSON")
    .description("entries, size and hit rate of each cache")
    .action((flags: { json?: boolean }) => {
      const local = openCache();
      try {
        const stats = local.stats();
        if (flags.json) {
          console.log(JSON.stringify({ path: local.path, caches: stats }));
          return;
        }
        console.log(local.path);
        for (const s of stats) {
          const lookups = s.hits + s.misses;
          const rate = lookups ? `${((100 * s.hits) / lookups).toFixed(1)}%` : "n/a";
          console.log(
            `${s.cache.padEnd(11)} ${String(s.entries).padStart(6)}/${s.capacity} entries  ${(s.sizeBytes / 1048576).toFixed(2)}/${s.maxSizeMb} MB  hit rate ${rate} (${s.hits} hits, ${s.misses} misses)`,
          );
        }
      } finally {
        local.close();
      }
    });
  cache
    .command("clear")
    .argument("[cache]", `one of ${CACHE_NAMES.join(", ")} (default: all)`)
    .description("delete cached results")
    .action((name: string | undefined) => {
      if (name !== undefined && !(CACHE_NAMES as readonly string[]).includes(name)) {
        throw new Error(`unknown cache '${name}'; use one of ${CACHE_NAMES.join(", ")}`);
      }
      const local = openCache();
      try {
        console.log(`removed ${local.clear(name as CacheName | undefined)} entries`);
      } finally {
        local.close();
      }
    });
  cache
    .command("path")
    .description("print the cache file's path")
    .action(() => console.log(join(loadSettings().cacheDir, "caches", "steadytext-cache.sqlite3")));
  cache
    .command("export")
    .argument("<file>", "where to write the entries (JSON lines)")
    .description("write every cached result to a file, for `st cache import` elsewhere")
    .action(async (file: string) => {
      const local = openCache();
      try {
        const lines = CACHE_NAMES.flatMap((cache) => local.entries(cache).map((e) => JSON.stringify({ cache, key: e.key, value: e.value.toString("base64") })));
        await writeFile(file, lines.length > 0 ? `${lines.join("\n")}\n` : "", { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
          throw new Error(error.code === "EEXIST" ? `${file} exists; not overwriting it` : `cannot write ${file}: ${error.code ?? error.message}`);
        });
        console.log(`exported ${lines.length} entries to ${file}`);
      } finally {
        local.close();
      }
    });
  cache
    .command("import")
    .argument("<file>", "a file written by `st cache export`")
    .description("add the entries of an export file to the cache (checked line by line; nothing is added if a line is bad)")
    .action(async (file: string) => {
      const entries: Array<z.output<typeof exportLine>> = [];
      let number = 0;
      const input = createReadStream(file).on("error", () => undefined);
      const opened = new Promise<void>((resolve, reject) => input.once("open", () => resolve()).once("error", (error: NodeJS.ErrnoException) => reject(new Error(`cannot read ${file}: ${error.code ?? error.message}`))));
      await opened;
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        number++;
        if (line.trim() === "") continue;
        let json: unknown;
        try {
          json = JSON.parse(line);
        } catch {
          throw new Error(`${file}:${number}: not JSON`);
        }
        const parsed = exportLine.safeParse(json);
        if (!parsed.success) throw new Error(`${file}:${number}: ${parsed.error.issues[0]!.path.join(".") || "line"}: ${parsed.error.issues[0]!.message}`);
        entries.push(parsed.data);
      }
      const local = openCache();
      try {
        for (const e of entries) local.put(e.cache, e.key, Buffer.from(e.value, "base64"));
        console.log(`imported ${entries.length} entries`);
      } finally {
        local.close();
      }
    });
}
