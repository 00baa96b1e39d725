#!/usr/bin/env node
// The engram-serverevents command line: runs the compiled CLI in dist/. In a
// checkout, `npm install` builds dist/ (the `prepare` script); after editing
// the sources, `npm run build` (npm start and npm test build first).
let main;
try {
  ({ main } = await import("../dist/src/cli/main.js"));
} catch (err) {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/src/cli/main.js")) {
    process.stderr.write("engram-serverevents: dist/ is missing: run `npm run build` in the checkout\n");
    process.exit(1);
  }
  throw err;
}
const code = await main(process.argv.slice(2));
// Every command has closed what it opened; exit now rather than wait for
// stdin or a lingering socket of a peer.
process.exit(code);
