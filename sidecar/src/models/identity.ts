// A model's identity is the sha256 of its file: cache keys use it, so a
// renamed or replaced file can never serve another model's answers. Hashing
// a multi-gigabyte file takes seconds, so results are remembered by
// (path, size, mtime, inode) in a small JSON file beside the caches.

import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";

const storedIdentities = z.record(
  z.string(),
  z.object({ size: z.number(), mtimeMs: z.number(), ino: z.number(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
);
type StoredIdentities = z.infer<typeof storedIdentities>;

export class ModelIdentities {
  private memory: StoredIdentities | undefined;
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly file: string) {}

  private async load(): Promise<StoredIdentities> {
    if (this.memory) return this.memory;
    try {
      const parsed = storedIdentities.safeParse(JSON.parse(await readFile(this.file, "utf8")));
      this.memory = parsed.success ? parsed.data : {};
    } catch {
      this.memory = {};
    }
    return this.memory;
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(this.memory ?? {}, null, 1));
    await rename(temporary, this.file);
  }

  /** Record a hash already known (computed while downloading or generating). */
  async remember(path: string, sha256: string): Promise<void> {
    const info = await stat(path);
    (await this.load())[path] = { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino, sha256 };
    await this.save();
  }

  /** The file's sha256, hashing it only if it changed since last time. */
  async of(path: string): Promise<string> {
    const running = this.pending.get(path);
    if (running) return running;
    const work = (async () => {
      // Synchronous: this runs on every request, and a stat of a cached inode takes microseconds, while the
      // thread pool round trip of fs.promises.stat took a tenth of a millisecond.
      const info = statSync(path);
      const known = (await this.load())[path];
      if (known && known.size === info.size && known.mtimeMs === info.mtimeMs && known.ino === info.ino) return known.sha256;
      const hash = createHash("sha256");
      await pipeline(createReadStream(path), hash);
      const sha256 = hash.digest("hex");
      (await this.load())[path] = { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino, sha256 };
      await this.save();
      return sha256;
    })();
    this.pending.set(path, work);
    try {
      return await work;
    } finally {
      this.pending.delete(path);
    }
  }
}
