#!/usr/bin/env node
// Builds the package into dist/: a clean tsc run of tsconfig.build.json (the
// library, the machine, the inspector and the CLI) plus the inspector's
// static page. `npm run build`; `prepare` runs it on `npm install` in a
// checkout and for a git dependency, `prepack` before `npm pack`/`publish`.
//
// Usage: node scripts/build.mjs [--out-dir DIR]   (default: dist)
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const at = process.argv.indexOf("--out-dir");
const outDir = resolve(root, at > 0 ? process.argv[at + 1] : "dist");

const require = createRequire(import.meta.url);
const tsPkg = require.resolve("typescript/package.json");
const tsc = join(dirname(tsPkg), require(tsPkg).bin.tsc);

rmSync(outDir, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", outDir], { stdio: "inherit", cwd: root });
cpSync(join(root, "inspector/page"), join(outDir, "inspector/page"), { recursive: true });
