// The one definition of the wire protocol (docs/protocol.md).
export * from "./errors.js";
export * from "./messages.js";
export * from "./codec.js";
export * from "./vector-frame.js";
