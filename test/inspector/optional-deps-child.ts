// Run by test/inspector/optional-deps.test.ts in a child process whose module
// resolution hides some packages; prints one JSON line of what it saw.
import { setup } from "xstate";

const mode = process.argv[2];
const out: Record<string, unknown> = { mode };
if (mode === "main") {
  const index = await import("../../src/index.js");
  out.exports = Object.keys(index).length;
} else if (mode === "inspector") {
  const { startInspector } = await import("../../inspector/index.js");
  const inspector = await startInspector();
  const page = await fetch(inspector.url);
  const svg = await fetch(`${inspector.url}statechart.svg`);
  out.page = page.status;
  out.svg = svg.status;
  out.bridgeDrawn = (await svg.text()).includes('data-state-path="connection.backoff"');
  await inspector.close();
  const toggle = setup({}).createMachine({ id: "toggle", initial: "off", states: { off: { on: { FLIP: "on" } }, on: {} } });
  const other = await startInspector({ machine: toggle });
  const otherSvg = await fetch(`${other.url}statechart.svg`);
  out.otherSvg = otherSvg.status;
  out.otherMessage = await otherSvg.text();
  await other.close();
} else if (mode === "no-ws") {
  const { startInspector } = await import("../../inspector/index.js");
  try {
    await (await startInspector()).close();
    out.started = true;
  } catch (err) {
    out.started = false;
    out.code = (err as { code?: unknown }).code;
    out.message = (err as Error).message;
  }
}
console.log(JSON.stringify(out));
