// st embed's output formats: JSON, NumPy's .npy file (np.load reads it), and
// hex of the little-endian float32 bytes (what the vectors are in memory).

export const EMBED_FORMATS = ["json", "numpy", "hex"] as const;
export type EmbedFormat = (typeof EMBED_FORMATS)[number];

/** A version 1.0 .npy file of float32 values with the given shape. */
export function npy(values: readonly number[], shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, ...Buffer.from("NUMPY")]).copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, "latin1"), Buffer.from(Float32Array.from(values).buffer)]);
}

export function formatEmbeddings(vectors: readonly number[][], single: boolean, format: EmbedFormat): Buffer {
  switch (format) {
    case "json":
      return Buffer.from(`${JSON.stringify(single ? vectors[0] : vectors)}\n`);
    case "numpy":
      return npy(vectors.flat(), single ? [vectors[0]!.length] : [vectors.length, vectors[0]!.length]);
    case "hex":
      return Buffer.from(`${vectors.map((v) => Buffer.from(Float32Array.from(v).buffer).toString("hex")).join("\n")}\n`);
  }
}
