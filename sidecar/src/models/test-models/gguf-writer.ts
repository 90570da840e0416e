// A minimal GGUF v3 writer: just enough to serialise the project's own tiny
// test models. The layout follows ggml's gguf.md: header, metadata, tensor
// infos, padding, tensor data, every tensor aligned to ALIGNMENT bytes.

// llama.cpp aborts the whole process on alignment 8; 32 is ggml's default.
export const GGUF_ALIGNMENT = 32;

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;

enum ValueType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
}

enum TensorType {
  F32 = 0,
}

/** A metadata value with its GGUF type made explicit, so numbers are never guessed. */
export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "i32[]"; value: readonly number[] }
  | { type: "f32[]"; value: readonly number[] };

export interface GgufTensor {
  name: string;
  /** ggml order: the innermost (contiguous) dimension first. */
  dims: readonly number[];
  data: Float32Array;
}

/** Growable little-endian byte buffer. */
class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;

  push(buf: Buffer): void {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  padTo(alignment: number): void {
    const rem = this.length % alignment;
    if (rem !== 0) this.push(Buffer.alloc(alignment - rem));
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function writeValue(sink: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      sink.u32(ValueType.Uint32);
      sink.u32(v.value);
      return;
    case "i32":
      sink.u32(ValueType.Int32);
      sink.i32(v.value);
      return;
    case "f32":
      sink.u32(ValueType.Float32);
      sink.f32(v.value);
      return;
    case "bool":
      sink.u32(ValueType.Bool);
      sink.push(Buffer.from([v.value ? 1 : 0]));
      return;
    case "string":
      sink.u32(ValueType.String);
      sink.string(v.value);
      return;
    case "string[]":
      sink.u32(ValueType.Array);
      sink.u32(ValueType.String);
      sink.u64(v.value.length);
      for (const s of v.value) sink.string(s);
      return;
    case "i32[]":
      sink.u32(ValueType.Array);
      sink.u32(ValueType.Int32);
      sink.u64(v.value.length);
      for (const n of v.value) sink.i32(n);
      return;
    case "f32[]":
      sink.u32(ValueType.Array);
      sink.u32(ValueType.Float32);
      sink.u64(v.value.length);
      for (const n of v.value) sink.f32(n);
      return;
  }
}

/** Serialise metadata and F32 tensors into one GGUF file image. */
export function encodeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): Buffer {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.length + 1);
  sink.string("general.alignment");
  writeValue(sink, { type: "u32", value: GGUF_ALIGNMENT });
  for (const [key, value] of metadata) {
    sink.string(key);
    writeValue(sink, value);
  }

  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(`tensor ${t.name}: dims ${t.dims.join("x")} need ${elements} values, got ${t.data.length}`);
    }
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(TensorType.F32);
    sink.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((elements * 4) / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  sink.padTo(GGUF_ALIGNMENT);

  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    // Float32Array is host-endian; GGUF is little-endian, as is every target we build for.
    sink.push(Buffer.from(bytes));
    sink.padTo(GGUF_ALIGNMENT);
  }
  return sink.toBuffer();
}
