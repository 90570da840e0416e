// st cache stats|clear|path: the sidecar's local cache file. (The Postgres
// mirror is managed from SQL: steadytext_cache_stats(), _clear(), eviction.)

import type { Command } from "commander";
import { join } from "node:path";
import { LocalCache, CACHE_NAMES, type CacheName } from "../cache/local-cache.js";
import { loadSettings } from "../config/settings.js";

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
}
