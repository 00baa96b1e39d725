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
// One bridge alone: the median of 9 readings (a GC can free something else
// between two readings, so one reading alone may even come out negative).
const ones = [];
for (let i = 0; i < 9; i++) {
  gc();
  const before = process.memoryUsage().heapUsed;
  keep.push(idle());
  gc();
  ones.push(process.memoryUsage().heapUsed - before);
}
ones.sort((x, y) => x - y);
const one = ones[4];
gc();
const a1 = process.memoryUsage().heapUsed;
for (let i = 0; i < count; i++) keep.push(idle());
gc();
const b1 = process.memoryUsage().heapUsed;
process.stdout.write(JSON.stringify({ one, perBridge: (b1 - a1) / count }));
