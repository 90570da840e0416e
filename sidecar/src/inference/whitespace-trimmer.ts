// Streams text as if it had been trimmed at both ends, like the final answer
// (SteadyText strips generated text): leading whitespace is dropped, trailing
// whitespace is held back until more text follows it, and dropped at the end.

export class WhitespaceTrimmer {
  private started = false;
  private held = "";

  constructor(private readonly emit: (chunk: string) => void) {}

  /** A chunk consumer that forwards the trimmed stream to `emit`. */
  static feeding(emit: (chunk: string) => void): (chunk: string) => void {
    const trimmer = new WhitespaceTrimmer(emit);
    return (chunk) => trimmer.push(chunk);
  }

  push(chunk: string): void {
    let text = this.held + chunk;
    if (!this.started) {
      text = text.replace(/^\s+/, "");
      if (text === "") {
        this.held = "";
        return;
      }
      this.started = true;
    }
    const trailing = /\s+$/.exec(text);
    this.held = trailing ? trailing[0] : "";
    const ready = trailing ? text.slice(0, trailing.index) : text;
    if (ready !== "") this.emit(ready);
  }
}
