// Deterministic pseudo-random weights. Only integer arithmetic and exact
// float operations are used (no Math.log/sin), so every machine and every
// Node version writes the same bytes.

/** mulberry32: a small, well-mixed 32-bit generator. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Approximately normal (Irwin-Hall of four uniforms), mean 0, standard deviation `std`. */
  normal(std: number): number {
    const sum = this.next() + this.next() + this.next() + this.next();
    // The sum of 4 uniforms has variance 4/12; rescale to variance 1.
    return (sum - 2) * Math.sqrt(3) * std;
  }
}

/** A stable 32-bit seed for one tensor of one model (FNV-1a over the name). */
export function tensorSeed(modelSeed: number, tensorName: string): number {
  let h = (0x811c9dc5 ^ modelSeed) >>> 0;
  for (const byte of Buffer.from(tensorName, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function randomTensor(random: SeededRandom, count: number, std: number): Float32Array {
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = random.normal(std);
  return data;
}

export function filledTensor(count: number, value: number): Float32Array {
  return new Float32Array(count).fill(value);
}
