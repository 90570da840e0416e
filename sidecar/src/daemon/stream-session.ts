// One generate_iter stream to one client: send a chunk, wait for the client's
// ACK, send the next; end with the end marker. A client that does not ACK in
// time, or sends something else, abandons the stream and its generation is
// aborted, so nothing keeps running for a client that went away.

export class StreamSession {
  private readonly queue: string[] = [];
  private awaitingAck = false;
  private ending: { marker: string; resolve(): void } | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  abandoned = false;
  onAbandon: ((reason: string) => void) | undefined;

  constructor(
    private readonly send: (token: string) => void,
    private readonly ackTimeoutMs: number,
  ) {}

  push(chunk: string): void {
    if (this.abandoned) return;
    this.queue.push(chunk);
    this.pump();
  }

  acknowledge(): void {
    if (!this.awaitingAck) return;
    clearTimeout(this.ackTimer);
    this.awaitingAck = false;
    this.pump();
  }

  /** Send the end marker once every chunk has been acknowledged (at once when abandoned: nobody waits for it). */
  finish(marker: string): Promise<void> {
    if (this.abandoned) return Promise.resolve();
    return new Promise((resolve) => {
      this.ending = { marker, resolve };
      this.pump();
    });
  }

  abandon(reason: string): void {
    if (this.abandoned) return;
    this.abandoned = true;
    clearTimeout(this.ackTimer);
    this.onAbandon?.(reason);
    this.ending?.resolve();
  }

  private pump(): void {
    if (this.awaitingAck || this.abandoned) return;
    const next = this.queue.shift();
    if (next === undefined) {
      if (this.ending) {
        this.send(this.ending.marker);
        this.ending.resolve();
      }
      return;
    }
    this.send(next);
    this.awaitingAck = true;
    this.ackTimer = setTimeout(() => this.abandon(`no ACK within ${this.ackTimeoutMs} ms`), this.ackTimeoutMs);
  }
}
