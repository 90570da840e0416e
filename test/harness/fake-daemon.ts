// A bare ZeroMQ ROUTER on loopback standing in for the daemon, for tests of
// what a backend sends and how it takes what comes back: `answer` sees every
// request and replies with whatever frames it likes (after the identity).

import { Router } from "zeromq";
import { freePort } from "../../scripts/lib/sidecar-process.js";

export interface FakeRequest {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

export type FakeAnswer = (request: FakeRequest, reply: (frames: Buffer[]) => Promise<void>) => Promise<void>;

export class FakeDaemon {
  private constructor(
    private readonly router: Router,
    readonly port: number,
    private readonly serving: Promise<void>,
  ) {}

  static async start(answer: FakeAnswer): Promise<FakeDaemon> {
    const router = new Router({ linger: 0 });
    const port = await freePort();
    await router.bind(`tcp://127.0.0.1:${port}`);
    const serving = (async () => {
      for await (const [identity, , payload] of router) {
        const request = JSON.parse(payload!.toString()) as FakeRequest;
        await answer(request, (frames) => router.send([identity!, ...frames]));
      }
    })().catch(() => undefined);
    return new FakeDaemon(router, port, serving);
  }

  async stop(): Promise<void> {
    this.router.close();
    await this.serving;
  }
}
