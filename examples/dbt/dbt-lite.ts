// A small stand-in for `dbt run`, for testing this example where dbt itself
// cannot be installed. It implements only what the models use, the way dbt
// does: models are compiled with Jinja (@huggingface/jinja); `ref('m')` is
// model m's relation in the target schema and orders m first; `source('s',
// 't')` is table t in schema s (a source's schema defaults to its name);
// `config(materialized=..., unique_key=...)` with table, view and
// incremental; `this` and `is_incremental()`. An incremental model's first
// run creates its table; later runs insert what its query returns, first
// deleting rows with the same unique_key (dbt-postgres's delete+insert).

import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Template } from "@huggingface/jinja";
import type pg from "pg";

export type Materialization = "table" | "view" | "incremental";

export interface ModelConfig {
  materialized: Materialization;
  uniqueKey: string | undefined;
}

export interface Model {
  name: string;
  source: string;
  config: ModelConfig;
  /** Models this one refers to with ref(). */
  refs: string[];
}

export interface ModelRun {
  name: string;
  materialized: Materialization;
  /** "created" (a table or view built anew) or "incremental" (rows added to an existing table). */
  action: "created" | "incremental";
  /** Rows written: the new table's rows, or the rows an incremental run inserted. */
  rows: number;
}

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;

/** A keyword argument's value, as the Jinja runtime hands it to a function. */
function keyword(args: unknown[], name: string): string | undefined {
  const last = args.at(-1);
  if (!(last instanceof Map)) return undefined;
  const value: unknown = last.get(name);
  if (value === undefined) return undefined;
  const inner = typeof value === "object" && value !== null && "value" in value ? (value as { value: unknown }).value : value;
  if (typeof inner !== "string") throw new Error(`config(${name}=...) must be a string`);
  return inner;
}

interface Rendered {
  sql: string;
  config: ModelConfig;
  refs: string[];
}

function render(model: Pick<Model, "name" | "source">, schema: string, incremental: boolean): Rendered {
  const config: ModelConfig = { materialized: "table", uniqueKey: undefined };
  const refs: string[] = [];
  const sql = new Template(model.source).render({
    config: (...args: unknown[]) => {
      const materialized = keyword(args, "materialized") ?? config.materialized;
      if (materialized !== "table" && materialized !== "view" && materialized !== "incremental") {
        throw new Error(`model ${model.name}: materialized='${materialized}' is not supported here (table, view, incremental)`);
      }
      config.materialized = materialized;
      config.uniqueKey = keyword(args, "unique_key") ?? config.uniqueKey;
      return "";
    },
    ref: (name: unknown) => {
      if (typeof name !== "string") throw new Error(`model ${model.name}: ref() takes a model name`);
      refs.push(name);
      return `${quote(schema)}.${quote(name)}`;
    },
    source: (source: unknown, table: unknown) => {
      if (typeof source !== "string" || typeof table !== "string") throw new Error(`model ${model.name}: source() takes two names`);
      return `${quote(source)}.${quote(table)}`;
    },
    is_incremental: () => incremental && config.materialized === "incremental",
    this: `${quote(schema)}.${quote(model.name)}`,
  });
  return { sql, config, refs };
}

/** The project's models (models/*.sql), each parsed as dbt parses it: with is_incremental() false. */
export function loadModels(projectDir: string): Model[] {
  const dir = join(projectDir, "models");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => {
      const model = { name: basename(f, ".sql"), source: readFileSync(join(dir, f), "utf8") };
      const { config, refs } = render(model, "parse", false);
      return { ...model, config, refs: [...new Set(refs)] };
    });
}

/** Models ordered so that each comes after every model it refers to. */
export function dependencyOrder(models: Model[]): Model[] {
  const byName = new Map(models.map((m) => [m.name, m]));
  const ordered: Model[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (model: Model, path: string[]) => {
    if (state.get(model.name) === "done") return;
    if (state.get(model.name) === "visiting") throw new Error(`models refer to each other in a cycle: ${[...path, model.name].join(" -> ")}`);
    state.set(model.name, "visiting");
    for (const name of model.refs) {
      const dependency = byName.get(name);
      if (!dependency) throw new Error(`model ${model.name} refers to ${name}, which is not a model`);
      visit(dependency, [...path, model.name]);
    }
    state.set(model.name, "done");
    ordered.push(model);
  };
  for (const model of models) visit(model, []);
  return ordered;
}

async function relationExists(client: pg.Client, schema: string, name: string): Promise<boolean> {
  const { rows } = await client.query("SELECT to_regclass($1) IS NOT NULL AS found", [`${quote(schema)}.${quote(name)}`]);
  return rows[0]?.found === true;
}

async function materialize(client: pg.Client, model: Model, schema: string): Promise<ModelRun> {
  const relation = `${quote(schema)}.${quote(model.name)}`;
  const exists = await relationExists(client, schema, model.name);
  const { sql, config } = render(model, schema, exists);
  if (config.materialized === "view") {
    await client.query(`DROP VIEW IF EXISTS ${relation}; CREATE VIEW ${relation} AS ${sql}`);
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${relation}`);
    return { name: model.name, materialized: "view", action: "created", rows: Number(rows[0]?.n) };
  }
  if (config.materialized === "incremental" && exists) {
    await client.query(`CREATE TEMP TABLE dbt_lite_increment ON COMMIT DROP AS ${sql}`);
    if (config.uniqueKey) {
      const key = quote(config.uniqueKey);
      await client.query(`DELETE FROM ${relation} AS target USING dbt_lite_increment AS increment WHERE target.${key} = increment.${key}`);
    }
    const inserted = await client.query(`INSERT INTO ${relation} SELECT * FROM dbt_lite_increment`);
    return { name: model.name, materialized: "incremental", action: "incremental", rows: inserted.rowCount ?? 0 };
  }
  // A table (or an incremental model's first run), built anew; views over the old one go with it and are rebuilt later in the run.
  await client.query(`DROP TABLE IF EXISTS ${relation} CASCADE`);
  const created = await client.query(`CREATE TABLE ${relation} AS ${sql}`);
  return { name: model.name, materialized: config.materialized, action: "created", rows: created.rowCount ?? 0 };
}

/** Run every model in dependency order, each in its own transaction, into `schema`. */
export async function runProject(client: pg.Client, projectDir: string, schema = "analytics"): Promise<ModelRun[]> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`);
  const runs: ModelRun[] = [];
  for (const model of dependencyOrder(loadModels(projectDir))) {
    await client.query("BEGIN");
    try {
      runs.push(await materialize(client, model, schema));
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK");
      throw new Error(`model ${model.name}: ${(error as Error).message}`);
    }
  }
  return runs;
}
