// A unix-socket proxy in front of PostgreSQL that can hold every byte: a
// database that is slow, or stuck, without being down. Paused, it reads
// nothing from either side, so the bytes wait in the kernel's buffers and
// the client sees a server that does not answer.

import { mkdir } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export class PausableProxy {
  private paused = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** The directory to use as the client's host (libpq looks for .s.PGSQL.<port> there). */
    readonly socketDir: string,
  ) {}

  /** Proxy `${targetDir}/.s.PGSQL.${port}` at `${socketDir}/.s.PGSQL.${port}`. */
  static async start(socketDir: string, targetDir: string, port: number): Promise<PausableProxy> {
    await mkdir(socketDir, { recursive: true });
    const server = createServer();
    const proxy = new PausableProxy(server, socketDir);
    server.on("connection", (client) => {
      const upstream = connect(join(targetDir, `.s.PGSQL.${port}`));
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        // Not pipe(): it resumes its source whenever the destination drains, paused or not.
        from.on("data", (chunk) => to.write(chunk));
        from.on("error", () => to.destroy());
        from.on("close", () => to.destroy());
        proxy.track(from);
      }
    });
    await new Promise<void>((resolve) => server.listen(join(socketDir, `.s.PGSQL.${port}`), resolve));
    return proxy;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    if (this.paused) socket.pause();
  }

  /** Hold every byte, on connections open now and on new ones. */
  pause(): void {
    this.paused = true;
    for (const socket of this.sockets) socket.pause();
  }

  resume(): void {
    this.paused = false;
    for (const socket of this.sockets) socket.resume();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
