// Structured generation: JSON Schema, regular expression or a list of
// choices, each compiled to a grammar that constrains every sampled token.
// Schemas are checked first: node-llama-cpp silently ignores keywords it
// cannot enforce (and turns anyOf or {} into "null"), which would give
// output that does not satisfy the schema. We refuse those with a clear error.

import type { Llama, LlamaGrammar } from "node-llama-cpp";
import type { GenerationConstraint } from "../cache/key.js";
import { invalidParams } from "../protocol/errors.js";
import type { GenerateParams } from "../protocol/messages.js";
import { choicesToGbnf, RegexGrammarError, regexToGbnf } from "./regex-to-gbnf.js";

/** Keywords that constrain values but that the grammar cannot enforce. */
const UNSUPPORTED_KEYWORDS = [
  "allOf", "not", "if", "then", "else", "pattern", "patternProperties", "propertyNames", "dependentRequired",
  "dependentSchemas", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems",
  "contains", "minContains", "maxContains", "unevaluatedProperties", "unevaluatedItems",
];
const SUPPORTED_FORMATS = ["date-time", "time", "date"];
const SUBSCHEMA_MAPS = ["properties", "$defs", "definitions"];
const SUBSCHEMA_LISTS = ["oneOf", "anyOf", "prefixItems"];

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Check a schema and return the form node-llama-cpp understands (anyOf as oneOf). */
export function normaliseSchema(schema: unknown, path = "$"): JsonObject {
  if (!isObject(schema)) throw invalidParams(`Invalid JSON schema: ${path} must be an object`);
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (UNSUPPORTED_KEYWORDS.includes(key)) {
      throw invalidParams(`Invalid JSON schema: keyword '${key}' at ${path} is not supported for constrained generation`);
    }
    if (key === "format" && !SUPPORTED_FORMATS.includes(String(value))) {
      throw invalidParams(`Invalid JSON schema: format '${String(value)}' at ${path} is not supported (use ${SUPPORTED_FORMATS.join(", ")})`);
    }
    if (SUBSCHEMA_MAPS.includes(key)) {
      if (!isObject(value)) throw invalidParams(`Invalid JSON schema: ${path}.${key} must be an object`);
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normaliseSchema(v, `${path}.${key}.${k}`)]));
    } else if (SUBSCHEMA_LISTS.includes(key)) {
      if (!Array.isArray(value) || value.length === 0) throw invalidParams(`Invalid JSON schema: ${path}.${key} must be a non-empty list`);
      out[key === "anyOf" ? "oneOf" : key] = value.map((v, i) => normaliseSchema(v, `${path}.${key}[${i}]`));
    } else if (key === "items" || (key === "additionalProperties" && isObject(value))) {
      out[key] = normaliseSchema(value, `${path}.${key}`);
    } else {
      out[key] = value;
    }
  }
  if (!["type", "const", "enum", "oneOf", "$ref"].some((k) => k in out)) {
    throw invalidParams(`Invalid JSON schema: ${path} must say what it allows (type, const, enum, oneOf/anyOf or $ref)`);
  }
  return out;
}

function parseSchema(schema: string | JsonObject): JsonObject {
  if (typeof schema !== "string") return normaliseSchema(schema);
  let parsed: unknown;
  try {
    parsed = JSON.parse(schema);
  } catch (error) {
    throw invalidParams(`Invalid JSON schema: ${(error as Error).message}`);
  }
  return normaliseSchema(parsed);
}

/** The constraint a generate request asks for; at most one kind. */
export function constraintFrom(params: GenerateParams): GenerationConstraint {
  const given = [params.schema, params.regex, params.choices, params.response_format].filter((v) => v !== null && v !== undefined);
  if (given.length > 1) throw invalidParams("give at most one of schema, regex, choices and response_format");
  if (params.schema !== null && params.schema !== undefined) {
    parseSchema(params.schema);
    return { kind: "json", schema: params.schema };
  }
  if (params.response_format) {
    const format = params.response_format;
    const nested = isObject(format.json_schema) ? format.json_schema.schema : format.schema;
    if (nested !== undefined) {
      if (!isObject(nested)) throw invalidParams("response_format schema must be an object");
      parseSchema(nested);
      return { kind: "json", schema: nested };
    }
    if (format.type === "json_object") return { kind: "json", schema: { type: "object", additionalProperties: true } };
    throw invalidParams("response_format must be {\"type\": \"json_object\"} or carry a schema");
  }
  if (params.regex !== null && params.regex !== undefined) {
    if (params.regex === "") throw invalidParams("Pattern cannot be null or empty");
    return { kind: "regex", pattern: params.regex };
  }
  if (params.choices) {
    if (params.choices.length < 2) throw invalidParams("Must provide at least 2 choices");
    if (params.choices.some((c) => c === "")) throw invalidParams("Choices cannot be empty strings");
    return { kind: "choice", choices: params.choices };
  }
  return { kind: "none" };
}

export interface CompiledConstraint {
  grammar: LlamaGrammar | undefined;
  /** Generated text is trimmed for free text and JSON; a regex or choice match is kept exact. */
  trim: boolean;
  /** Throws invalid_params when the text does not satisfy the constraint (cut off by max_tokens). */
  check(text: string, maxTokens: number): void;
}

export async function compileConstraint(llama: Llama, constraint: GenerationConstraint): Promise<CompiledConstraint> {
  const cutOff = (maxTokens: number, what: string) =>
    invalidParams(`the output does not ${what}: it was cut off at max_tokens=${maxTokens}; raise max_tokens`);
  switch (constraint.kind) {
    case "none":
      return { grammar: undefined, trim: true, check: () => undefined };
    case "json": {
      const schema = parseSchema(constraint.schema);
      // The library types schemas as literal types; ours is only known at run time.
      const createJsonGrammar = llama.createGrammarForJsonSchema.bind(llama) as unknown as (
        schema: JsonObject,
      ) => Promise<LlamaGrammar & { parse(json: string): unknown }>;
      let grammar: LlamaGrammar & { parse(json: string): unknown };
      try {
        grammar = await createJsonGrammar(schema);
      } catch (error) {
        throw invalidParams(`Invalid JSON schema: ${(error as Error).message}`);
      }
      return {
        grammar,
        trim: true,
        check: (text, maxTokens) => {
          try {
            grammar.parse(text);
          } catch {
            throw cutOff(maxTokens, "form JSON valid for the schema");
          }
        },
      };
    }
    case "regex": {
      let gbnf: string;
      try {
        gbnf = regexToGbnf(constraint.pattern);
      } catch (error) {
        if (error instanceof RegexGrammarError) throw invalidParams(`Pattern cannot be used as a grammar: ${error.message}`);
        throw error;
      }
      const grammar = await llama.createGrammar({ grammar: gbnf }).catch((error: unknown) => {
        throw invalidParams(`Pattern cannot be used as a grammar: ${(error as Error).message}`);
      });
      const whole = new RegExp(`^(?:${constraint.pattern.replace(/^\^/, "").replace(/(?<!\\)\$$/, "")})$`, "u");
      return {
        grammar,
        trim: false,
        check: (text, maxTokens) => {
          if (!whole.test(text)) throw cutOff(maxTokens, "match the pattern");
        },
      };
    }
    case "choice": {
      const grammar = await llama.createGrammar({ grammar: choicesToGbnf(constraint.choices) });
      return {
        grammar,
        trim: false,
        check: (text, maxTokens) => {
          if (!constraint.choices.includes(text)) throw cutOff(maxTokens, "equal one of the choices");
        },
      };
    }
  }
}
