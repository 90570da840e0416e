// How each kind of answer is stored in the local cache: text as UTF-8, a
// vector as little-endian float32 (exactly the values served), a score as a
// float64.

import { float32Bytes, float32Values } from "../util/float32.js";

export const encodeText = (text: string): Buffer => Buffer.from(text, "utf8");
export const decodeText = (value: Buffer): string => value.toString("utf8");

export const encodeVector = (vector: readonly number[]): Buffer => float32Bytes([vector]);
export const decodeVector = float32Values;

export function encodeScore(score: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeDoubleLE(score);
  return buffer;
}

export const decodeScore = (value: Buffer): number => value.readDoubleLE(0);
