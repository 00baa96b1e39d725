// Writes the bridge statechart's export into the repository:
//   inspector/export/bridge.machine.json  the machine definition, keys sorted
//   docs/bridge-machine.svg               the diagram, laid out with elkjs
//   inspector/export/bridge-machine-diagram.ts  the same diagram as a module the inspector serves
//                                         (so the runtime needs no elkjs)
//
// Usage: npm run machine:export            (write the files)
//        npm run machine:export -- --check (exit 1 if the committed files are stale)
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bridgeMachine } from "../machines/bridge.machine.js";
import { exportMachine, machineExportPaths } from "../inspector/machine-export.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const check = process.argv.includes("--check");
const fresh = await exportMachine(bridgeMachine);
const outputs = [
  { path: machineExportPaths.json, text: fresh.json },
  { path: machineExportPaths.svg, text: fresh.svg },
  { path: machineExportPaths.diagram, text: fresh.diagram },
];

let stale = 0;
for (const { path, text } of outputs) {
  const abs = join(root, path);
  const current = await readFile(abs, "utf8").catch(() => undefined);
  if (current === text) {
    console.log(`up to date  ${path}`);
    continue;
  }
  if (check) {
    stale++;
    console.log(`STALE       ${path}`);
    continue;
  }
  await mkdir(dirname(abs), { recursive: true });
  await writeFile(abs, text);
  console.log(`wrote       ${path} (${Buffer.byteLength(text)} bytes)`);
}
if (stale > 0) {
  console.log(`${stale} file(s) differ from the machine: run npm run machine:export`);
  process.exitCode = 1;
}
