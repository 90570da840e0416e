// The TypeScript library: run the models in-process with Engine, or talk to
// a running daemon with DaemonClient.
//
//   import { Engine, loadSettings } from "pg-steadytext";
//   const engine = new Engine(loadSettings());
//   const text = await engine.generate(parseParams(generateParams, { prompt: "Hello" }));

export { Engine, type RequestContext } from "./engine/engine.js";
export { DaemonClient, DaemonError } from "./client/daemon-client.js";
export { loadSettings, SettingsError, type Settings } from "./config/settings.js";
export * from "./protocol/index.js";
