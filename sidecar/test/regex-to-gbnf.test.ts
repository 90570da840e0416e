// Pins regex → GBNF: the grammar accepts exactly what the pattern matches in full, unsupported syntax is a clear error, llama.cpp accepts the output.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, LlamaCompletion, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";
import { choicesToGbnf, gbnfLiteral, RegexGrammarError, regexToGbnf } from "../src/inference/regex-to-gbnf.js";
import { testModelPath, writeTestModels } from "../src/models/test-models/index.js";
import { SeededRandom } from "../src/models/test-models/weights.js";

/** The pattern as a JavaScript RegExp that must match the whole text (how grammar.ts checks output). */
function wholeMatch(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern.replace(/^\^/, "").replace(/(?<!\\)\$$/, "")})$`, "u");
}

/**
 * Read the single-rule GBNF that regexToGbnf emits back as a RegExp, so the
 * grammar's language can be compared with the pattern's on any string.
 */
function gbnfAsRegExp(gbnf: string): RegExp {
  const rule = /^root ::= (.*)\n$/s.exec(gbnf);
  assert.ok(rule, `not a single root rule: ${JSON.stringify(gbnf)}`);
  const src = rule[1]!;
  assert.ok(!src.includes("\n"), "the rule spans several lines");
  let i = 0;
  const hex = (digits: number): number => {
    const text = src.slice(i + 2, i + 2 + digits);
    assert.match(text, new RegExp(`^[0-9a-fA-F]{${digits}}$`));
    i += 2 + digits;
    return parseInt(text, 16);
  };
  const readChar = (): number => {
    if (src[i] !== "\\") {
      const cp = src.codePointAt(i)!;
      i += String.fromCodePoint(cp).length;
      return cp;
    }
    const letter = src[i + 1]!;
    if (letter === "x") return hex(2);
    if (letter === "u") return hex(4);
    if (letter === "U") return hex(8);
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, "\\": 92, '"': 34, "[": 91, "]": 93 };
    assert.ok(letter in simple, `unknown GBNF escape \\${letter}`);
    i += 2;
    return simple[letter]!;
  };
  const lit = (cp: number): string => `\\u{${cp.toString(16)}}`;
  let out = "";
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"') {
      i++;
      let literal = "";
      while (src[i] !== '"') literal += lit(readChar());
      i++;
      out += `(?:${literal})`;
    } else if (c === "[") {
      i++;
      let cls = "[";
      if (src[i] === "^") {
        cls += "^";
        i++;
      }
      while (src[i] !== "]") {
        if (src[i] === "-") {
          cls += "-";
          i++;
        } else cls += lit(readChar());
      }
      i++;
      out += `${cls}]`;
    } else if (c === " ") i++;
    else if ("()|*+?".includes(c)) {
      out += c === "(" ? "(?:" : c;
      i++;
    } else if (c === "{") {
      const quantifier = /^\{\d+,\d*\}/.exec(src.slice(i));
      assert.ok(quantifier, `bad repetition at ${i} in ${gbnf}`);
      out += quantifier[0];
      i += quantifier[0].length;
    } else assert.fail(`unexpected '${c}' at ${i} in ${gbnf}`);
  }
  return new RegExp(`^(?:${out})$`, "u");
}

/** Deterministic random numbers (the test models' generator), so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

/** Random strings over an alphabet, lengths 0..maxLength. */
function randomStrings(alphabet: readonly string[], count: number, maxLength: number, seed: number): string[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => {
    const length = Math.floor(random() * (maxLength + 1));
    return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!).join("");
  });
}

interface Case {
  name: string;
  pattern: string;
  matches: string[];
  rejects: string[];
}

const CASES: Case[] = [
  { name: "literals", pattern: "abc", matches: ["abc"], rejects: ["", "ab", "abcd", "ABC"] },
  { name: "punctuation literals are escaped", pattern: 'a"b\\\\c\\.d', matches: ['a"b\\c.d'], rejects: ['a"b\\cxd', "abcd"] },
  { name: "non-ASCII literals", pattern: "é🙂中", matches: ["é🙂中"], rejects: ["e🙂中", "é中"] },
  { name: "class", pattern: "[abc]", matches: ["a", "b", "c"], rejects: ["d", "", "ab"] },
  { name: "class range", pattern: "[a-f0-3]", matches: ["a", "f", "0", "3"], rejects: ["g", "4", "-"] },
  { name: "negated class", pattern: "[^a-c]", matches: ["d", "-", "🙂", "\n"], rejects: ["a", "b", "c", ""] },
  { name: "class with escapes and a literal dash", pattern: "[\\w.-]", matches: ["a", "Z", "_", "9", ".", "-"], rejects: [" ", "@", ""] },
  { name: "class with escaped bracket and backspace", pattern: "[\\]\\b]", matches: ["]", "\b"], rejects: ["b", "\\"] },
  { name: "\\d", pattern: "\\d", matches: ["0", "9"], rejects: ["a", "٣", ""] },
  { name: "\\w", pattern: "\\w", matches: ["a", "Z", "_", "5"], rejects: ["-", "é", " "] },
  { name: "\\s over ASCII whitespace", pattern: "\\s", matches: [" ", "\t", "\n", "\r", "\f", "\v"], rejects: ["a", ""] },
  { name: "\\D \\W", pattern: "\\D\\W", matches: ["a-", "é "], rejects: ["1-", "aa"] },
  { name: ". excludes line terminators", pattern: "a.b", matches: ["a b", "a🙂b", "a\tb"], rejects: ["a\nb", "a\rb", "a\u2028b", "ab"] },
  { name: "hex and unicode escapes", pattern: "\\x41\\u00e9\\t", matches: ["Aé\t"], rejects: ["Ae\t"] },
  { name: "capturing group", pattern: "(ab)+", matches: ["ab", "abab"], rejects: ["", "a", "aba"] },
  { name: "non-capturing group", pattern: "(?:a|b)c", matches: ["ac", "bc"], rejects: ["abc", "c"] },
  { name: "named group", pattern: "(?<year>\\d{4})-(?<month>\\d{2})", matches: ["2024-01"], rejects: ["24-01", "2024-1"] },
  { name: "alternation", pattern: "cat|dog|bird", matches: ["cat", "dog", "bird"], rejects: ["catdog", "ca", ""] },
  { name: "empty alternative", pattern: "a(b|)c", matches: ["abc", "ac"], rejects: ["abbc"] },
  { name: "*", pattern: "ab*", matches: ["a", "ab", "abbb"], rejects: ["", "b", "aab"] },
  { name: "+", pattern: "ab+", matches: ["ab", "abbb"], rejects: ["a", ""] },
  { name: "?", pattern: "colou?r", matches: ["color", "colour"], rejects: ["colouur"] },
  { name: "{n}", pattern: "a{3}", matches: ["aaa"], rejects: ["aa", "aaaa"] },
  { name: "{n,}", pattern: "a{2,}", matches: ["aa", "aaaaaa"], rejects: ["a", ""] },
  { name: "{n,m}", pattern: "a{2,4}", matches: ["aa", "aaa", "aaaa"], rejects: ["a", "aaaaa"] },
  { name: "{0}", pattern: "ab{0}c", matches: ["ac"], rejects: ["abc"] },
  { name: "lazy quantifiers accept the same strings", pattern: "a+?b*?c??", matches: ["a", "aabbc"], rejects: ["b"] },
  { name: "anchors at both ends", pattern: "^ab$", matches: ["ab"], rejects: ["abab", "b"] },
  { name: "quantified group with alternation", pattern: "(x|yz){1,2}!", matches: ["x!", "yzx!", "yzyz!"], rejects: ["!", "xxx!", "y!"] },
  { name: "email-ish", pattern: "[\\w.]+@[a-z]+\\.(com|org)", matches: ["a.b@ex.com", "x@y.org"], rejects: ["@y.com", "a@b.net"] },
];

describe("regexToGbnf: the grammar accepts exactly what the pattern matches", () => {
  for (const [index, c] of CASES.entries()) {
    test(c.name, () => {
      const gbnf = regexToGbnf(c.pattern);
      assert.ok(gbnf.startsWith("root ::= ") && gbnf.endsWith("\n"), gbnf);
      const whole = wholeMatch(c.pattern);
      const grammar = gbnfAsRegExp(gbnf);
      for (const text of c.matches) {
        assert.ok(whole.test(text), `premise: /${c.pattern}/ should match ${JSON.stringify(text)}`);
        assert.ok(grammar.test(text), `grammar ${gbnf.trim()} rejects ${JSON.stringify(text)}`);
      }
      for (const text of c.rejects) {
        assert.ok(!whole.test(text), `premise: /${c.pattern}/ should not match ${JSON.stringify(text)}`);
        assert.ok(!grammar.test(text), `grammar ${gbnf.trim()} accepts ${JSON.stringify(text)}`);
      }
      const alphabet = [...new Set([...c.matches, ...c.rejects].flatMap((t) => [...t]).concat(["a", "1", " ", "-"]))];
      for (const text of randomStrings(alphabet, 400, 8, 1000 + index)) {
        assert.equal(grammar.test(text), whole.test(text), `grammar and pattern disagree on ${JSON.stringify(text)}`);
      }
    });
  }

  test("the output is ASCII: every other character is escaped", () => {
    for (const c of CASES) assert.match(regexToGbnf(c.pattern), /^[\x20-\x7e]*\n$/, c.pattern);
  });
});

describe("regexToGbnf: Unicode whitespace and escapes behave as in JavaScript", () => {
  const gap = (pattern: string, text: string) => () => {
    assert.equal(gbnfAsRegExp(regexToGbnf(pattern)).test(text), wholeMatch(pattern).test(text));
  };
  test("\\S refuses U+00A0 like JavaScript does", gap("\\S+", "a\u00a0b"));
  test("[^\\s] refuses U+3000 like JavaScript does", gap("[^\\s]", "\u3000"));
  test("\\s accepts U+00A0 like JavaScript does", gap("\\s", "\u00a0"));
  test("a \\uD83D\\uDE00 surrogate pair means one emoji", gap("\\ud83d\\ude00", "😀"));
  test("a \\u{1F600} escape is accepted", () => {
    assert.ok(gbnfAsRegExp(regexToGbnf("\\u{1F600}")).test("😀"));
  });
});

describe("regexToGbnf: unsupported or invalid patterns are a RegexGrammarError", () => {
  const ERRORS: Array<[string, string, RegExp]> = [
    ["backreference", "(a)\\1", /backreferences are not supported/],
    ["lookahead", "a(?=b)", /lookaround/],
    ["negative lookahead", "a(?!b)", /lookaround/],
    ["lookbehind", "(?<=a)b", /lookaround/],
    ["negative lookbehind", "(?<!a)b", /lookaround/],
    ["word boundary", "\\bword", /word boundaries \(\\b\) are not supported/],
    ["nested quantifier", "a+*", /Nothing to repeat|nested quantifier/],
    ["double star", "a**", /Nothing to repeat|nested quantifier/],
    ["empty pattern", "", /empty/],
    ["unterminated group", "(ab", /not a valid regular expression/],
    ["unmatched paren", "ab)", /not a valid regular expression/],
    ["unterminated class", "[ab", /not a valid regular expression/],
    ["out-of-order range", "[z-a]", /not a valid regular expression/],
    ["count over 1000", "a{1001}", /above 1000/],
    ["upper count over 1000", "a{2,1001}", /above 1000/],
    ["lower count over 1000", "a{1001,}", /above 1000/],
    ["unicode property", "\\p{L}", /unknown escape \\p/],
    ["$ in the middle", "a$b", /'\$' is only supported at the end/],
    ["^ in the middle", "a^b", /'\^' is only supported at the start/],
    ["negated escape in a class", "[\\S]", /negated escapes inside a class/],
  ];
  for (const [name, pattern, message] of ERRORS) {
    test(name, () => {
      assert.throws(() => regexToGbnf(pattern), (error: unknown) => {
        assert.ok(error instanceof RegexGrammarError, `${String(error)} is not a RegexGrammarError`);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test("a count of exactly 1000 is accepted", () => {
    assert.ok(gbnfAsRegExp(regexToGbnf("a{1000}")).test("a".repeat(1000)));
  });
});

describe("choicesToGbnf and gbnfLiteral", () => {
  const AWKWARD = ['say "hi"', "back\\slash", "\\", '"', "café", "中文", "🙂 emoji", "👩‍💻", "tab\there", "new\nline", "a|b", "(x)", "[y]"];

  test("the grammar accepts each choice and nothing else", () => {
    const grammar = gbnfAsRegExp(choicesToGbnf(AWKWARD));
    for (const choice of AWKWARD) assert.ok(grammar.test(choice), JSON.stringify(choice));
    for (const other of ["say hi", "back\\\\slash", "cafe", "🙂", "a", "", `${AWKWARD[0]}${AWKWARD[1]}`]) {
      assert.ok(!grammar.test(other), JSON.stringify(other));
    }
  });

  test("a literal is pure ASCII between quotes", () => {
    for (const choice of AWKWARD) assert.match(gbnfLiteral(choice), /^"[\x20-\x21\x23-\x7e]*"$/, JSON.stringify(choice));
  });
});

describe("llama.cpp accepts the produced grammars", () => {
  let dir: string;
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;
  let sequence: LlamaContextSequence;
  let completion: LlamaCompletion;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-gbnf-"));
    await writeTestModels(dir);
    llama = await getLlama({ gpu: false, build: "never" });
    model = await llama.loadModel({ modelPath: testModelPath(dir, "generation") });
    // One thread: the tiny model is far slower with more (see model-host.ts).
    context = await model.createContext({ contextSize: 256, threads: 1 });
    sequence = context.getSequence();
    completion = new LlamaCompletion({ contextSequence: sequence });
  });
  after(async () => {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function generate(gbnf: string): Promise<string> {
    const grammar = await llama.createGrammar({ grammar: gbnf });
    await sequence.clearHistory();
    return completion.generateCompletion("Answer:", { grammar, maxTokens: 48, temperature: 0 });
  }

  test("every converted pattern compiles", async () => {
    for (const c of CASES) {
      await assert.doesNotReject(llama.createGrammar({ grammar: regexToGbnf(c.pattern) }), c.name);
    }
  });

  test("a broken grammar is refused, so compiling proves something", async () => {
    await assert.rejects(llama.createGrammar({ grammar: "root ::= [" }));
    await assert.rejects(llama.createGrammar({ grammar: 'root ::= "\\q"' }));
  });

  test("constrained generation produces text the pattern matches in full", async () => {
    for (const pattern of ["\\d{3}-\\d{4}", "(cat|dog)s?", "[A-Z][a-z]{2,5}", "é🙂x", "[^\\s]{4}", "a.b", "[\\u00e0-\\u00ff]{3}", "(yes|no)!{1,2}"]) {
      const text = await generate(regexToGbnf(pattern));
      assert.ok(wholeMatch(pattern).test(text), `/${pattern}/ does not match generated ${JSON.stringify(text)}`);
    }
  });

  test("each awkward choice, alone, is generated byte for byte", async () => {
    for (const choice of ['say "hi"', "back\\slash", "café", "🙂 emoji", "中文"]) {
      assert.equal(await generate(choicesToGbnf([choice])), choice);
    }
  });

  test("a choice grammar generates one of the choices", async () => {
    const choices = ['"quoted"', "\\", "naïve", "🎉🎉"];
    assert.ok(choices.includes(await generate(choicesToGbnf(choices))));
  });
});
