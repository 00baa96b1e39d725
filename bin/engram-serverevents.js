#!/usr/bin/env node
// The engram-serverevents command line. The sources are TypeScript: tsx
// (a runtime dependency) compiles them on the fly.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// Every command has closed what it opened; exit now rather than wait for
// stdin or a lingering socket of a peer.
process.exit(code);
