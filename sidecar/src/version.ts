// The one version string of the TypeScript side: package.json's. SQL's
// steadytext_version(), the control file and the install script's name are
// pinned to it by sidecar/test/version.test.ts.

import { readFileSync } from "node:fs";

// sidecar/src/version.ts and sidecar/dist/version.js are both two levels below package.json.
const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

export const VERSION: string = packageJson.version;
