// Converts a regular expression to a GBNF grammar, so generation can only
// produce text the pattern matches (as a whole). Supported: literals, escapes
// (\d \w \s \D \W \S and escaped punctuation), classes with ranges and
// negation, ".", groups ((...), (?:...), (?<name>...)), alternation,
// quantifiers (* + ? {n} {n,} {n,m}, lazy or not), and ^ / $ at the ends.
// Anything else (backreferences, lookaround, \b, flags) is a clear error.

export class RegexGrammarError extends Error {}

type Node =
  | { type: "literal"; codePoint: number }
  | { type: "class"; negated: boolean; ranges: Array<[number, number]> }
  | { type: "sequence"; items: Node[] }
  | { type: "alternation"; options: Node[] }
  | { type: "repeat"; node: Node; min: number; max: number | null };

const MAX_REPEAT = 1000;

const DIGIT: Array<[number, number]> = [[0x30, 0x39]];
const WORD: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** JavaScript's \s: ASCII whitespace and the Unicode space separators. */
const SPACE: Array<[number, number]> = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];

class Parser {
  private position = 0;
  private readonly chars: number[];

  constructor(pattern: string) {
    this.chars = [...pattern].map((c) => c.codePointAt(0)!);
  }

  private peek(): number | undefined {
    return this.chars[this.position];
  }

  private fail(message: string): never {
    throw new RegexGrammarError(`${message} at position ${this.position}`);
  }

  parse(): Node {
    if (this.peek() === 0x5e /* ^ */) this.position++;
    const node = this.alternation();
    if (this.position < this.chars.length) this.fail(`unexpected '${String.fromCodePoint(this.peek()!)}'`);
    return node;
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === 0x7c /* | */) {
      this.position++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0]! : { type: "alternation", options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 0x7c || c === 0x29 /* ) */) break;
      if (c === 0x24 /* $ */) {
        this.position++;
        if (this.position !== this.chars.length) this.fail("'$' is only supported at the end of the pattern");
        break;
      }
      items.push(this.quantified(this.atom()));
    }
    return items.length === 1 ? items[0]! : { type: "sequence", items };
  }

  private quantified(node: Node): Node {
    const c = this.peek();
    let min: number;
    let max: number | null;
    if (c === 0x2a /* * */) [min, max] = [0, null];
    else if (c === 0x2b /* + */) [min, max] = [1, null];
    else if (c === 0x3f /* ? */) [min, max] = [0, 1];
    else if (c === 0x7b /* { */) {
      const rest = String.fromCodePoint(...this.chars.slice(this.position));
      const match = /^\{(\d+)(,(\d*))?\}/.exec(rest);
      if (!match) return node; // a literal "{", as in JavaScript's non-unicode mode
      min = Number(match[1]);
      max = match[2] === undefined ? min : match[3] === "" ? null : Number(match[3]);
      if (max !== null && max < min) this.fail("quantifier range is out of order");
      if (min > MAX_REPEAT || (max ?? 0) > MAX_REPEAT) this.fail(`repetition counts above ${MAX_REPEAT} are not supported`);
      this.position += match[0].length - 1;
    } else return node;
    this.position++;
    if (this.peek() === 0x3f) this.position++; // lazy: the same language
    if ([0x2a, 0x2b, 0x3f].includes(this.peek() ?? -1)) this.fail("nested quantifier");
    return { type: "repeat", node, min, max };
  }

  private atom(): Node {
    const c = this.peek();
    if (c === undefined) this.fail("unexpected end of pattern");
    this.position++;
    switch (c) {
      case 0x28 /* ( */: {
        if (this.peek() === 0x3f /* ? */) {
          const next = this.chars[this.position + 1];
          if (next === 0x3a /* : */) this.position += 2;
          else if (next === 0x3c /* < */ && ![0x3d, 0x21].includes(this.chars[this.position + 2] ?? -1)) {
            const close = this.chars.indexOf(0x3e /* > */, this.position);
            if (close < 0) this.fail("unterminated group name");
            this.position = close + 1;
          } else this.fail("lookaround and inline flags are not supported");
        }
        const inner = this.alternation();
        if (this.peek() !== 0x29) this.fail("missing ')'");
        this.position++;
        return inner;
      }
      case 0x5b /* [ */:
        return this.characterClass();
      case 0x2e /* . */:
        return { type: "class", negated: true, ranges: [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]] };
      case 0x5c /* \ */:
        return this.escape(false);
      case 0x2a:
      case 0x2b:
      case 0x3f:
        this.position--;
        return this.fail("quantifier without anything to repeat");
      case 0x5e /* ^ */:
        this.position--;
        return this.fail("'^' is only supported at the start of the pattern");
      case 0x29:
        this.position--;
        return this.fail("unmatched ')'");
      default:
        return { type: "literal", codePoint: c };
    }
  }

  private escape(inClass: boolean): Node {
    const c = this.peek();
    if (c === undefined) this.fail("pattern ends with '\\'");
    this.position++;
    const letter = String.fromCodePoint(c);
    const cls = (ranges: Array<[number, number]>, negated = false): Node => ({ type: "class", negated, ranges });
    switch (letter) {
      case "d": return cls(DIGIT);
      case "D": return cls(DIGIT, true);
      case "w": return cls(WORD);
      case "W": return cls(WORD, true);
      case "s": return cls(SPACE);
      case "S": return cls(SPACE, true);
      case "n": return { type: "literal", codePoint: 0x0a };
      case "r": return { type: "literal", codePoint: 0x0d };
      case "t": return { type: "literal", codePoint: 0x09 };
      case "f": return { type: "literal", codePoint: 0x0c };
      case "v": return { type: "literal", codePoint: 0x0b };
      case "0": return { type: "literal", codePoint: 0 };
      case "x":
        return { type: "literal", codePoint: this.hexDigits(2, "x") };
      case "u": {
        if (this.peek() === 0x7b /* { */) {
          const close = this.chars.indexOf(0x7d /* } */, this.position);
          const hex = close > 0 ? String.fromCodePoint(...this.chars.slice(this.position + 1, close)) : "";
          if (!/^[0-9a-fA-F]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) this.fail("bad \\u{...} escape");
          this.position = close + 1;
          return { type: "literal", codePoint: parseInt(hex, 16) };
        }
        const unit = this.hexDigits(4, "u");
        // A high and a low surrogate written as two escapes are one character.
        const next = this.chars.slice(this.position, this.position + 6);
        if (unit >= 0xd800 && unit <= 0xdbff && next[0] === 0x5c && next[1] === 0x75) {
          const low = parseInt(String.fromCodePoint(...next.slice(2)), 16);
          if (low >= 0xdc00 && low <= 0xdfff) {
            this.position += 6;
            return { type: "literal", codePoint: 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00) };
          }
        }
        return { type: "literal", codePoint: unit };
      }
      case "b":
        if (inClass) return { type: "literal", codePoint: 0x08 };
        return this.fail("word boundaries (\\b) are not supported");
      default:
        if (/[0-9]/.test(letter)) return this.fail("backreferences are not supported");
        if (/[A-Za-z]/.test(letter)) return this.fail(`unknown escape \\${letter}`);
        return { type: "literal", codePoint: c };
    }
  }

  private hexDigits(digits: number, letter: string): number {
    const hex = String.fromCodePoint(...this.chars.slice(this.position, this.position + digits));
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) this.fail(`bad \\${letter} escape`);
    this.position += digits;
    return parseInt(hex, 16);
  }

  private characterClass(): Node {
    let negated = false;
    if (this.peek() === 0x5e) {
      negated = true;
      this.position++;
    }
    const ranges: Array<[number, number]> = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("missing ']'");
      if (c === 0x5d /* ] */ && !first) {
        this.position++;
        break;
      }
      first = false;
      const start = this.classMember();
      if (start.type === "class") {
        if (start.negated) this.fail("negated escapes inside a class are not supported");
        ranges.push(...start.ranges);
        continue;
      }
      if (this.peek() === 0x2d /* - */ && this.chars[this.position + 1] !== 0x5d && this.chars[this.position + 1] !== undefined) {
        this.position++;
        const end = this.classMember();
        if (end.type !== "literal") this.fail("a class range must end with a character");
        const from = (start as { codePoint: number }).codePoint;
        if (end.codePoint < from) this.fail("class range is out of order");
        ranges.push([from, end.codePoint]);
      } else {
        const point = (start as { codePoint: number }).codePoint;
        ranges.push([point, point]);
      }
    }
    if (ranges.length === 0) this.fail("empty class");
    return { type: "class", negated, ranges };
  }

  private classMember(): Node {
    const c = this.peek()!;
    this.position++;
    if (c === 0x5c) return this.escape(true);
    return { type: "literal", codePoint: c };
  }
}

function escapeCodePoint(codePoint: number): string {
  if ((codePoint >= 0x30 && codePoint <= 0x39) || (codePoint >= 0x41 && codePoint <= 0x5a) || (codePoint >= 0x61 && codePoint <= 0x7a)) {
    return String.fromCodePoint(codePoint);
  }
  if (codePoint <= 0xff) return `\\x${codePoint.toString(16).padStart(2, "0")}`;
  if (codePoint <= 0xffff) return `\\u${codePoint.toString(16).padStart(4, "0")}`;
  return `\\U${codePoint.toString(16).padStart(8, "0")}`;
}

/** GBNF for a string literal: every non-alphanumeric character escaped. */
export function gbnfLiteral(text: string): string {
  return `"${[...text].map((c) => escapeCodePoint(c.codePointAt(0)!)).join("")}"`;
}

function emit(node: Node): string {
  switch (node.type) {
    case "literal":
      return `"${escapeCodePoint(node.codePoint)}"`;
    case "class":
      return `[${node.negated ? "^" : ""}${node.ranges
        .map(([a, b]) => (a === b ? escapeCodePoint(a) : `${escapeCodePoint(a)}-${escapeCodePoint(b)}`))
        .join("")}]`;
    case "sequence":
      return node.items.length === 0 ? '""' : `(${node.items.map(emit).join(" ")})`;
    case "alternation":
      return `(${node.options.map(emit).join(" | ")})`;
    case "repeat": {
      const inner = emit(node.node);
      if (node.min === 0 && node.max === null) return `${inner}*`;
      if (node.min === 1 && node.max === null) return `${inner}+`;
      if (node.min === 0 && node.max === 1) return `${inner}?`;
      return `${inner}{${node.min},${node.max ?? ""}}`;
    }
  }
}

/** A GBNF grammar whose language is the strings the pattern matches in full. */
export function regexToGbnf(pattern: string): string {
  if (pattern.length === 0) throw new RegexGrammarError("the pattern is empty");
  try {
    new RegExp(pattern, "u");
  } catch (error) {
    throw new RegexGrammarError(`not a valid regular expression: ${(error as Error).message}`);
  }
  return `root ::= ${emit(new Parser(pattern).parse())}\n`;
}

/** GBNF that allows exactly one of the given strings. */
export function choicesToGbnf(choices: readonly string[]): string {
  return `root ::= ${choices.map(gbnfLiteral).join(" | ")}\n`;
}
