// Vectors as bytes: little-endian IEEE float32, one value after another. The
// local cache, the daemon's vector frames and the writes into PostgreSQL all
// carry vectors this way; the values are float32 to begin with (llama.cpp's
// output), so the bytes hold exactly the values served.

/** The vectors' values as bytes, one vector after the other. */
export function float32Bytes(vectors: readonly (readonly number[])[]): Buffer {
  const bytes = Buffer.allocUnsafe(vectors.reduce((n, v) => n + v.length, 0) * 4);
  let offset = 0;
  for (const vector of vectors) for (const value of vector) offset = bytes.writeFloatLE(value, offset);
  return bytes;
}

/** The whole float32 values in `bytes` (a trailing partial value is ignored). */
export function float32Values(bytes: Buffer): number[] {
  const values = new Array<number>(bytes.length >> 2);
  for (let i = 0; i < values.length; i++) values[i] = bytes.readFloatLE(i * 4);
  return values;
}
