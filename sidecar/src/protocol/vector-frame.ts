// Vectors as one binary frame: what a client that asks for it
// (params.vector_encoding = "f32le", only our clients do) gets instead of
// JSON numbers. The JSON reply keeps the exact three members id, result and
// error; its result names the encoding and each vector's length, and the frame
// after it holds the values, little-endian IEEE float32, one vector after the
// other. The vectors are float32 to begin with (llama.cpp's output), so both
// encodings carry the same bits; the frame saves formatting and parsing
// 1,024 decimal numbers per vector.

import { z } from "zod";
import { float32Bytes, float32Values } from "../util/float32.js";

export const VECTOR_ENCODINGS = ["json", "f32le"] as const;
export type VectorEncoding = (typeof VECTOR_ENCODINGS)[number];

export const vectorFrameHeader = z.object({
  encoding: z.literal("f32le"),
  dimensions: z.array(z.number().int().min(0).max(1 << 20)).max(1 << 20),
});
export type VectorFrameHeader = z.output<typeof vectorFrameHeader>;

/** A result that travels as a header (the JSON result) and a frame of float32 values. */
export class VectorFrameResult {
  constructor(
    readonly header: VectorFrameHeader,
    readonly frame: Buffer,
  ) {}
}

export function encodeVectorFrame(vectors: readonly (readonly number[])[]): VectorFrameResult {
  return new VectorFrameResult({ encoding: "f32le", dimensions: vectors.map((v) => v.length) }, float32Bytes(vectors));
}

/** The vectors of a header and its frame; throws when they do not fit together. */
export function decodeVectorFrame(header: unknown, frame: Buffer): number[][] {
  const parsed = vectorFrameHeader.safeParse(header);
  if (!parsed.success) throw new Error("the vector frame's header is malformed");
  const total = parsed.data.dimensions.reduce((n, d) => n + d, 0);
  if (frame.length !== total * 4) throw new Error(`the vector frame has ${frame.length} bytes, the header says ${total * 4}`);
  let offset = 0;
  return parsed.data.dimensions.map((dimension) => float32Values(frame.subarray(offset, (offset += dimension * 4))));
}
