// Jinja2 prompt templates (the prompt registry's steadytext_prompt_* functions):
// parsing with the variables a template needs, and rendering, through
// @huggingface/jinja. No model is involved, so this works while none is loaded.
//
// Differences from Python's Jinja2 that matter here, and what we do:
// - Jinja2's defaults are trim_blocks = lstrip_blocks = false and a single
//   trailing newline dropped (keep_trailing_newline = false): we tokenize so.
// - Strict rendering is StrictUndefined's rule: a missing variable may be
//   tested (`is defined`) or given a `default`, any other use is an error.
//   Every missing variable is reported, not only the first.
// - strftime_now is not offered: a rendered prompt depends on its inputs only.

import * as jinja from "@huggingface/jinja";
import type { TemplateOutcome } from "../protocol/messages.js";

// The package's declaration files import their siblings without extensions,
// which NodeNext cannot resolve: its exports would be `any`. These are the
// parts we use, typed here.
interface Program {
  type: "Program";
}
interface RuntimeValue {
  type: string;
  value: unknown;
}
interface Environment {
  variables: Map<string, unknown>;
  parent?: Environment | undefined;
  set(name: string, value: unknown): unknown;
}
interface InterpreterInstance {
  run(program: Program): RuntimeValue;
  evaluate(statement: unknown, environment: Environment): RuntimeValue;
}
const { Environment, Interpreter, parse, tokenize } = jinja as unknown as {
  Environment: new (parent?: Environment) => Environment;
  Interpreter: new (environment?: Environment) => InterpreterInstance;
  tokenize(source: string, options: { trim_blocks: boolean; lstrip_blocks: boolean }): unknown[];
  parse(tokens: unknown[]): Program;
};

const MAX_RANGE = 100_000;

/** Names every template may use without the caller passing them. */
const GLOBALS: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ["true", true],
  ["false", false],
  ["none", null],
  ["True", true],
  ["False", false],
  ["None", null],
  ["range", (start: number, stop?: number, step = 1) => {
    const [from, to] = stop === undefined ? [0, start] : [start, stop];
    if (step === 0) throw new Error("range() step must not be zero");
    // Rendering runs on the daemon's event loop: no template may loop for ever.
    if ((to - from) / step > MAX_RANGE) throw new Error(`range() is limited to ${MAX_RANGE} items`);
    const out: number[] = [];
    for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
    return out;
  }],
]);
const BUILTIN_NAMES = new Set([...GLOBALS.keys(), "namespace", "loop", "caller", "varargs", "kwargs"]);

function compile(source: string): Program {
  // Jinja2 drops one trailing newline of the template.
  const text = source.endsWith("\r\n") ? source.slice(0, -2) : source.endsWith("\n") ? source.slice(0, -1) : source;
  return parse(tokenize(text, { trim_blocks: false, lstrip_blocks: false }));
}

// ---------------------------------------------------------------------------
// Required variables: names the template reads that it does not define itself
// (jinja2.meta.find_undeclared_variables).

interface AnyNode {
  type: string;
  [field: string]: unknown;
}

const asNode = (value: unknown): AnyNode | undefined =>
  value !== null && typeof value === "object" && typeof (value as { type?: unknown }).type === "string" ? (value as AnyNode) : undefined;
const nodes = (value: unknown): AnyNode[] => (Array.isArray(value) ? value.map(asNode).filter((n): n is AnyNode => n !== undefined) : []);

/** Identifier names a loop variable, set target or macro parameter binds. */
function boundNames(node: AnyNode | undefined): string[] {
  if (!node) return [];
  if (node.type === "Identifier") return [node.value as string];
  if (node.type === "TupleLiteral" || node.type === "ArrayLiteral") return nodes(node.value).flatMap(boundNames);
  if (node.type === "KeywordArgumentExpression") return boundNames(asNode(node.key));
  return [];
}

function collectFree(node: AnyNode | undefined, scope: Set<string>, free: Set<string>): void {
  if (!node) return;
  const walk = (child: unknown, s: Set<string> = scope) => collectFree(asNode(child), s, free);
  const block = (children: unknown, s: Set<string>) => nodes(children).forEach((c) => collectFree(c, s, free));
  switch (node.type) {
    case "Program":
      block(node.body, scope);
      return;
    case "Identifier": {
      const name = node.value as string;
      if (!scope.has(name) && !BUILTIN_NAMES.has(name)) free.add(name);
      return;
    }
    case "Set": {
      walk(node.value);
      // A block set ({% set x %}...{% endset %}) renders its body first.
      block(node.body, scope);
      const target = asNode(node.assignee);
      if (target?.type === "MemberExpression") walk(target.object);
      else boundNames(target).forEach((n) => scope.add(n));
      return;
    }
    case "For": {
      walk(node.iterable);
      block(node.body, new Set([...scope, ...boundNames(asNode(node.loopvar))]));
      block(node.defaultBlock, new Set(scope));
      return;
    }
    case "Macro": {
      const params = nodes(node.args);
      params.filter((p) => p.type === "KeywordArgumentExpression").forEach((p) => walk(p.value));
      scope.add(boundNames(asNode(node.name))[0] ?? "");
      block(node.body, new Set([...scope, ...params.flatMap(boundNames)]));
      return;
    }
    case "CallStatement":
      walk(node.call);
      block(node.body, new Set([...scope, ...nodes(node.callerArgs).flatMap(boundNames)]));
      return;
    case "If":
      walk(node.test);
      block(node.body, scope);
      block(node.alternate, scope);
      return;
    case "MemberExpression":
      walk(node.object);
      if (node.computed) walk(node.property);
      return;
    case "CallExpression":
      walk(node.callee);
      nodes(node.args).forEach((a) => walk(a));
      return;
    case "FilterExpression":
    case "FilterStatement": {
      walk(node.operand);
      block(node.body, scope);
      const filter = asNode(node.filter);
      if (filter?.type === "CallExpression") nodes(filter.args).forEach((a) => walk(a));
      return;
    }
    case "TestExpression":
      walk(node.operand);
      return;
    case "KeywordArgumentExpression":
      walk(node.value);
      return;
    case "ObjectLiteral":
      for (const [key, value] of node.value as Map<unknown, unknown>) {
        walk(key);
        walk(value);
      }
      return;
    case "ArrayLiteral":
    case "TupleLiteral":
      nodes(node.value).forEach((v) => walk(v));
      return;
    default:
      // Every other expression: visit its node-valued fields (operands, arguments, slices, ternaries).
      for (const [field, value] of Object.entries(node)) {
        if (field === "type" || field === "operator") continue;
        if (Array.isArray(value)) nodes(value).forEach((v) => walk(v));
        else walk(value);
      }
  }
}

/** Parse a template: its required variables (sorted), or why it does not parse. */
export function analyzeTemplate(source: string): TemplateOutcome<{ variables: string[] }> {
  let program: Program;
  try {
    program = compile(source);
  } catch (error) {
    return { ok: false, kind: "syntax", message: (error as Error).message };
  }
  const free = new Set<string>();
  collectFree(program as unknown as AnyNode, new Set(), free);
  return { ok: true, variables: [...free].sort() };
}

// ---------------------------------------------------------------------------
// Rendering

const isDefined = (environment: Environment, name: string): boolean => {
  for (let env: Environment | undefined = environment; env; env = env.parent) {
    if (env.variables.has(name)) return true;
  }
  return false;
};

/** Whether evaluating `node` tolerates an undefined operand: `x is defined`, `x | default(...)`. */
function guards(node: AnyNode): boolean {
  if (node.type === "TestExpression") {
    const test = asNode(node.test);
    return test?.type === "Identifier" && (test.value === "defined" || test.value === "undefined");
  }
  if (node.type === "FilterExpression") {
    const filter = asNode(node.filter);
    const name = filter?.type === "CallExpression" ? asNode(filter.callee)?.value : filter?.value;
    return name === "default" || name === "d";
  }
  return false;
}

/** Records each variable a strict render uses without it being defined. */
class StrictInterpreter extends Interpreter {
  readonly missing = new Set<string>();
  private guarded = 0;

  override evaluate(statement: unknown, environment: Environment): RuntimeValue {
    const node = statement as unknown as AnyNode | undefined;
    if (node?.type === "Identifier" && this.guarded === 0 && !isDefined(environment, node.value as string)) {
      this.missing.add(node.value as string);
    }
    const guarding = node !== undefined && guards(node);
    if (guarding) this.guarded++;
    try {
      return super.evaluate(statement, environment);
    } finally {
      if (guarding) this.guarded--;
    }
  }
}

/** Render with the given variables; strict reports every missing variable. */
export function renderTemplate(source: string, variables: Record<string, unknown>, strict: boolean): TemplateOutcome<{ text: string }> {
  let program: Program;
  try {
    program = compile(source);
  } catch (error) {
    return { ok: false, kind: "syntax", message: (error as Error).message };
  }
  const environment = new Environment();
  for (const [name, value] of GLOBALS) environment.set(name, value);
  for (const [name, value] of Object.entries(variables)) environment.set(name, value);
  const interpreter = strict ? new StrictInterpreter(environment) : new Interpreter(environment);
  let text: string | undefined;
  let failure: Error | undefined;
  try {
    const result = interpreter.run(program);
    text = typeof result.value === "string" ? result.value : String(result.value);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  }
  if (interpreter instanceof StrictInterpreter && interpreter.missing.size > 0) {
    const missing = [...interpreter.missing].sort();
    return { ok: false, kind: "missing", message: `Missing required variables: ${missing.join(", ")}`, missing };
  }
  if (failure || text === undefined) return { ok: false, kind: "render", message: failure?.message ?? "no output" };
  return { ok: true, text };
}
