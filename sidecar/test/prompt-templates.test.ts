// Pins prompt templates (the prompt registry's rendering, in the daemon): Jinja2's
// variables, filters, loops, conditionals and defaults; the variables a template
// needs; strict rendering that names every missing variable; Jinja2's whitespace.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { analyzeTemplate, renderTemplate } from "../src/templates/prompt-template.js";

const render = (template: string, variables: Record<string, unknown> = {}, strict = true): string => {
  const outcome = renderTemplate(template, variables, strict);
  assert.ok(outcome.ok, `render failed: ${JSON.stringify(outcome)}`);
  return outcome.text;
};

describe("prompt templates", () => {
  test("variables, filters, loops and conditionals render as Jinja2 renders them", () => {
    assert.equal(render("Hello {{ name | upper }}!", { name: "ann" }), "Hello ANN!");
    assert.equal(
      render("{% for i in items %}{{ loop.index }}. {{ i | title }}{% if not loop.last %}; {% endif %}{% endfor %}", { items: ["red fox", "owl"] }),
      "1. Red Fox; 2. Owl",
    );
    assert.equal(render("{% if n > 1 %}many{% else %}one{% endif %}", { n: 2 }), "many");
    assert.equal(render("{{ xs | join(', ') }} ({{ xs | length }})", { xs: ["a", "b"] }), "a, b (2)");
    assert.equal(render("{{ user.name }} is {{ user['age'] }}", { user: { name: "Bo", age: 7 } }), "Bo is 7");
  });

  test("a default or an 'is defined' test makes a variable optional, even in strict mode", () => {
    assert.equal(render("Hi {{ who | default('there') }}{% if title is defined %}, {{ title }}{% endif %}"), "Hi there");
  });

  test("strict rendering names every missing variable it uses, sorted", () => {
    const outcome = renderTemplate("{{ b }} {{ a }} {{ c | default('x') }} {{ b }}", {}, true);
    assert.deepEqual(outcome, { ok: false, kind: "missing", message: "Missing required variables: a, b", missing: ["a", "b"] });
  });

  test("lenient rendering leaves missing variables empty", () => {
    assert.equal(render("[{{ a }}]", {}, false), "[]");
  });

  test("required variables are what the template reads and does not define, sorted", () => {
    assert.deepEqual(
      analyzeTemplate("{% set greeting = 'hi' %}{{ greeting }} {{ name }}{% for x in items %}{{ x }}{{ sep }}{% endfor %}{{ z | default(1) }}"),
      { ok: true, variables: ["items", "name", "sep", "z"] },
    );
    assert.deepEqual(analyzeTemplate("{% macro m(p, q=dflt) %}{{ p }}{{ q }}{{ other }}{% endmacro %}{{ m(1) }}"), {
      ok: true,
      variables: ["dflt", "other"],
    });
  });

  test("a template that does not parse is a syntax error at analysis and at rendering", () => {
    for (const outcome of [analyzeTemplate("{% for x in %}"), renderTemplate("{{ unclosed", {}, true)]) {
      assert.equal(outcome.ok, false);
      assert.equal(!outcome.ok && outcome.kind, "syntax");
    }
  });

  test("an error while rendering (an unknown filter) is a render error", () => {
    const outcome = renderTemplate("{{ x | no_such_filter }}", { x: 1 }, true);
    assert.equal(!outcome.ok && outcome.kind, "render");
  });

  test("whitespace follows Jinja2's defaults: blocks are not trimmed, one trailing newline is dropped", () => {
    assert.equal(render("{% if true %}\n  x\n{% endif %}\n"), "\n  x\n");
  });

  test("range() is bounded, so no template keeps the daemon busy for ever", () => {
    assert.equal(render("{% for i in range(3) %}{{ i }}{% endfor %}"), "012");
    const outcome = renderTemplate("{% for i in range(1000000000) %}{% endfor %}", {}, true);
    assert.equal(!outcome.ok && outcome.kind, "render");
  });

  test("templates cannot read the clock: strftime_now is not available", () => {
    assert.equal(renderTemplate("{{ strftime_now('%Y') }}", {}, true).ok, false);
  });
});
