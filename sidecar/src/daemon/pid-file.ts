// The PID file of a running daemon: written after the socket is bound,
// removed on an orderly stop, and recognised as stale when its process is gone.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export async function writePidFile(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${process.pid}\n`);
}

export async function removePidFile(path: string): Promise<void> {
  // Only our own: a newer daemon may have replaced it.
  if ((await readPid(path)) === process.pid) await rm(path, { force: true });
}

export async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The PID of the daemon that owns this file, if that process still runs. */
export async function runningPid(path: string): Promise<number | undefined> {
  const pid = await readPid(path);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}
