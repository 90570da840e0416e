// `st keys generate`: CURVE key pairs for a daemon on a non-loopback
// endpoint and for its clients (PostgreSQL), written with mode 0600 for the
// secret halves. zeromq.js makes them with libzmq's zmq_curve_keypair.

import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { curveKeyPair } from "zeromq";

export function registerKeyCommands(program: Command): void {
  const keys = program.command("keys").description("ZeroMQ CURVE keys for a daemon reached over the network");
  keys
    .command("generate")
    .description("write a server and a client key pair into a directory")
    .requiredOption("--dir <dir>", "where to write server.key, server.pub, client.key, client.pub")
    .action((options: { dir: string }) => {
      const dir = resolve(options.dir);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const server = curveKeyPair();
      const client = curveKeyPair();
      writeFileSync(join(dir, "server.key"), `${server.secretKey}\n`, { mode: 0o600 });
      writeFileSync(join(dir, "server.pub"), `${server.publicKey}\n`, { mode: 0o644 });
      writeFileSync(join(dir, "client.key"), `${client.secretKey}\n`, { mode: 0o600 });
      writeFileSync(join(dir, "client.pub"), `${client.publicKey}\n`, { mode: 0o644 });
      console.log(`daemon:     STEADYTEXT_CURVE_SECRET_KEY_FILE=${join(dir, "server.key")}`);
      console.log(`            STEADYTEXT_CURVE_CLIENT_KEYS_FILE=${join(dir, "client.pub")} (the client keys admitted, one per line)`);
      console.log(`PostgreSQL: steadytext.daemon_curve_public_key = '${server.publicKey}'`);
      console.log(`            steadytext.curve_client_key_file = '${join(dir, "client.key")}' (readable by the server's OS user only)`);
    });
}
