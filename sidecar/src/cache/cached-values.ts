// How each kind of answer is stored in the local cache: text as UTF-8, a
// vector as little-endian float32 (exactly the values served), a score as a
// float64.

export const encodeText = (text: string): Buffer => Buffer.from(text, "utf8");
export const decodeText = (value: Buffer): string => value.toString("utf8");

export function encodeVector(vector: readonly number[]): Buffer {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => buffer.writeFloatLE(x, i * 4));
  return buffer;
}

export function decodeVector(value: Buffer): number[] {
  const vector: number[] = [];
  for (let offset = 0; offset + 4 <= value.length; offset += 4) vector.push(value.readFloatLE(offset));
  return vector;
}

export function encodeScore(score: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeDoubleLE(score);
  return buffer;
}

export const decodeScore = (value: Buffer): number => value.readDoubleLE(0);
