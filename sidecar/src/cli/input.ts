// Where a command's text comes from when it is not on the command line: stdin
// (`echo q | st generate`), or a file; `--schema` takes JSON inline or a file.

import { readFile } from "node:fs/promises";

/** All of stdin as text; undefined when stdin is a terminal (nothing was piped). */
export async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** The argument, or stdin when it is absent or "-" (trimmed, as SteadyText's CLI does). */
export async function argumentOrStdin(value: string | undefined, what: string): Promise<string> {
  if (value !== undefined && value !== "-") return value;
  const piped = await readStdin();
  if (piped === undefined) throw new Error(`no ${what}: give it as an argument or pipe it on stdin`);
  return piped.trim();
}

/** Non-empty lines of a file ("-" is stdin). */
export async function readLines(path: string): Promise<string[]> {
  const text = path === "-" ? ((await readStdin()) ?? "") : await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${path}: ${error.code ?? error.message}`);
  });
  return text.split(/\r?\n/).filter((line) => line.trim() !== "");
}

/** A JSON schema given inline ("{...}") or as the path of a file holding one. */
export async function schemaFrom(value: string): Promise<Record<string, unknown>> {
  const text = value.trimStart().startsWith("{")
    ? value
    : await readFile(value, "utf8").catch((error: NodeJS.ErrnoException) => {
        throw new Error(`--schema is neither JSON nor a readable file (${error.code ?? error.message})`);
      });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("--schema is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("--schema must be a JSON object");
  return parsed as Record<string, unknown>;
}
