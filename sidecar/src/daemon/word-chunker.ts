// Splits streamed text into chunks that depend only on the text itself, not
// on how it arrived: a chunk ends where ASCII whitespace is followed by
// anything else. A stream computed token by token and one replayed from the
// cache in one piece therefore give the same rows; SQL's _steadytext_chunks
// splits cached text by the same rule.

export class WordChunker {
  private pending = "";

  constructor(private readonly emit: (chunk: string) => void) {}

  push(text: string): void {
    this.pending += text;
    // Emit every complete chunk: up to each whitespace → non-space boundary.
    const boundary = /[ \t\n\r\f\v](?=[^ \t\n\r\f\v])/g;
    let start = 0;
    for (let match = boundary.exec(this.pending); match; match = boundary.exec(this.pending)) {
      const end = match.index + 1;
      this.emit(this.pending.slice(start, end));
      start = end;
    }
    this.pending = this.pending.slice(start);
  }

  end(): void {
    if (this.pending !== "") this.emit(this.pending);
    this.pending = "";
  }
}

/** The chunks of a whole text, as WordChunker would stream them. */
export function chunkWords(text: string): string[] {
  const chunks: string[] = [];
  const chunker = new WordChunker((c) => chunks.push(c));
  chunker.push(text);
  chunker.end();
  return chunks;
}
