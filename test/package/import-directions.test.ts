/**
 * Which way imports run (docs/architecture.md "Layers"): generated code at
 * the bottom, then the statechart (machines/), then the runtime (src/), and
 * on top what is built on the runtime: the CLI, the health server, the dev
 * server and the inspector. A lower layer never imports a higher one.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { repoRoot } from "./consumer-project.js";

const imports = suite("import directions");

/** The leaf modules of src/ the statechart shares (each imports nothing but gen/ and the others). */
const machineMayImport = ["src/errors.ts", "src/types.ts", "src/call-errors.ts", "src/timing.ts", "src/server-data.ts"];

/** Built on the runtime; the runtime never imports them. */
const above = ["src/cli/", "src/dev-server/", "src/health/", "inspector/"];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(repoRoot, dir)).sort()) {
    const rel = `${dir}/${name}`;
    if (statSync(join(repoRoot, rel)).isDirectory()) {
      if (name !== "node_modules" && name !== "gen") out.push(...sourceFiles(rel));
    } else if (/\.(ts|mjs|js)$/.test(name) && !name.endsWith(".d.ts")) {
      out.push(rel);
    }
  }
  return out;
}

/** The repository paths a file imports (relative specifiers only; `.js` read as the `.ts` source). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(repoRoot, file), "utf8");
  const specifiers = [
    ...text.matchAll(/\bfrom\s+"([^"]+)"/g),
    ...text.matchAll(/\bimport\s*\(\s*"([^"]+)"\s*\)/g),
    ...text.matchAll(/^\s*import\s+"([^"]+)"/gm),
  ].map((m) => m[1] as string);
  return specifiers
    .filter((s) => s.startsWith("."))
    .map((s) => relative(repoRoot, resolve(dirname(join(repoRoot, file)), s)).replace(/\.js$/, ".ts"));
}

function violations(files: string[], forbidden: (target: string) => boolean): string[] {
  return files.flatMap((f) =>
    importsOf(f)
      .filter(forbidden)
      .map((t) => `${f} -> ${t}`),
  );
}

imports("the parser sees imports (a check that cannot fail would prove nothing)", () => {
  assert.ok(importsOf("src/bridge-machine-shared.ts").includes("machines/bridge.machine.ts"));
  assert.ok(importsOf("machines/bridge.machine.ts").includes("src/errors.ts"));
  assert.ok(importsOf("src/index.ts").includes("src/dev-server/index.ts"));
});

imports("machines/ imports from src/ only the leaf modules it shares", () => {
  const bad = violations(
    sourceFiles("machines"),
    (t) => t.startsWith("src/") && !t.startsWith("src/gen/") && !machineMayImport.includes(t),
  );
  assert.equal(bad, [], `machines/ reaches into the runtime:\n${bad.join("\n")}`);
});

imports("the leaf modules machines/ shares import only each other and src/gen/", () => {
  const bad = violations(machineMayImport, (t) => !t.startsWith("src/gen/") && !machineMayImport.includes(t));
  assert.equal(bad, [], bad.join("\n"));
});

imports(
  "the runtime (src/ without cli/, dev-server/, health/) never imports the CLI, the dev server, the health server or the inspector",
  () => {
    const runtime = sourceFiles("src").filter((f) => !above.some((a) => f.startsWith(a)) && f !== "src/index.ts");
    assert.ok(runtime.length > 20, `runtime files found: ${runtime.length}`);
    const bad = violations(runtime, (t) => above.some((a) => t.startsWith(a)));
    assert.equal(bad, [], `the runtime imports a layer above it:\n${bad.join("\n")}`);
  },
);

imports("the package entry re-exports the dev server, never the CLI or the inspector", () => {
  const bad = violations(["src/index.ts"], (t) => t.startsWith("src/cli/") || t.startsWith("inspector/") || t.startsWith("src/health/"));
  assert.equal(bad, [], bad.join("\n"));
});

imports("the dev server, the health server and machines/ never import the CLI or the inspector", () => {
  const files = [...sourceFiles("src/dev-server"), ...sourceFiles("src/health"), ...sourceFiles("machines")];
  const bad = violations(files, (t) => t.startsWith("src/cli/") || t.startsWith("inspector/"));
  assert.equal(bad, [], bad.join("\n"));
});

imports.run();
