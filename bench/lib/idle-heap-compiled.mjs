// Heap per idle bridge of the COMPILED package (dist/, plain node, no tsx):
// tsx keeps function names with Object.defineProperty, which puts every
// named function's properties in dictionary mode (about 250 bytes each), so
// heap figures taken under tsx overstate what users run. Prints JSON.
//   node --expose-gc bench/lib/idle-heap-compiled.mjs <dist index.js URL> <bridges>
const [, , indexUrl, countArg] = process.argv;
const { createBridge, HandlerRegistry } = await import(indexUrl);
const count = Number(countArg ?? 1000);
const logger = { debug() {}, info() {}, warn() {}, error() {} };
const idle = () => {
  const registry = new HandlerRegistry();
  registry.register({ name: "noop", onProjectRemoved() {} });
  return createBridge({ registry, env: {}, serverUrl: "http://127.0.0.1:9", logger, clientId: "mem" });
};
const gc = () => {
  globalThis.gc();
  globalThis.gc();
};
const keep = [];
for (let i = 0; i < 20; i++) idle();
gc();
const a0 = process.memoryUsage().heapUsed;
keep.push(idle());
gc();
const a1 = process.memoryUsage().heapUsed;
for (let i = 0; i < count; i++) keep.push(idle());
gc();
const b1 = process.memoryUsage().heapUsed;
process.stdout.write(JSON.stringify({ one: a1 - a0, perBridge: (b1 - a1) / count }));
