import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { setup } from "xstate";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import { exportMachine, machineDefinitionJson, machineExportPaths } from "../../inspector/machine-export.js";
import { activePaths, createStateGraph, describeEvent } from "../../inspector/statechart-graph.js";
import { statechartSvg } from "../../inspector/statechart-diagram.js";
import { bridgeDiagram } from "../../inspector/export/bridge-machine-diagram.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const exported = suite("machine export");

exported("the committed export is what npm run machine:export writes now", async () => {
  const fresh = await exportMachine(bridgeMachine);
  for (const [kind, path] of Object.entries(machineExportPaths)) {
    const committed = await readFile(`${root}${path}`, "utf8").catch(() => "(missing)");
    const now = fresh[kind as keyof typeof fresh];
    assert.ok(committed === now, `${path} is stale: run npm run machine:export and commit the result`);
  }
});

exported("the inspector serves the committed diagram for the bridge machine, and lays out others itself", async () => {
  const fresh = await exportMachine(bridgeMachine);
  assert.is(await statechartSvg(bridgeMachine), fresh.svg, "the committed module holds what elkjs lays out now");
  assert.is(bridgeDiagram.svg, fresh.svg);
  // A provided machine draws the same: it gets the committed diagram too.
  assert.is(await statechartSvg(bridgeMachine.provide({})), bridgeDiagram.svg);
  const toggle = setup({}).createMachine({ id: "toggle", initial: "off", states: { off: { on: { FLIP: "on" } }, on: {} } });
  const svg = await statechartSvg(toggle);
  assert.ok(svg.includes('data-machine-id="toggle"') && svg.includes('data-state-path="on"'));
});

exported("the JSON is the machine definition with every key sorted", () => {
  const text = machineDefinitionJson(bridgeMachine);
  const def = JSON.parse(text) as Record<string, unknown>;
  const unsorted: string[] = [];
  const check = (v: unknown, at: string): void => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) check(x, `${at}[${i}]`);
      return;
    }
    if (v === null || typeof v !== "object") return;
    const keys = Object.keys(v);
    if (keys.join() !== [...keys].sort().join()) unsorted.push(at);
    for (const k of keys) check((v as Record<string, unknown>)[k], `${at}.${k}`);
  };
  check(def, "$");
  assert.equal(unsorted, []);
  assert.is(def.id, "bridge");
  assert.is(def.type, "parallel");
  // Guards survive as data rather than vanishing with the functions.
  assert.match(text, /"type": "xstate.and"/);
  assert.match(text, /"guard": "reconnecting"/);
  // Stable: the same text twice, and JSON from toJSON() carries the same states.
  assert.is(machineDefinitionJson(bridgeMachine), text);
  const states = (j: unknown): string[] => Object.keys((j as { states: Record<string, unknown> }).states);
  assert.equal(states(def).sort(), states(JSON.parse(JSON.stringify(bridgeMachine.toJSON()))).sort());
});

exported("the SVG draws every state and every transition with its event or delay name", async () => {
  const { svg } = await exportMachine(bridgeMachine);
  const graph = createStateGraph(bridgeMachine);
  for (const node of graph.nodes) {
    assert.ok(svg.includes(`data-state-path="${node.path}"`), `state ${node.path || "(root)"} is drawn`);
  }
  let transitions = 0;
  for (const state of Object.values(collectStates(bridgeMachine.root))) {
    for (const [eventType] of state.transitions) {
      transitions++;
      assert.ok(svg.includes(eventType), `transition on ${eventType} from ${state.id} is in the diagram`);
      const label = describeEvent(eventType, state);
      assert.ok(svg.includes(`>${label}`) || svg.includes(` ${label}`), `label "${label}" is drawn`);
    }
  }
  assert.ok(transitions >= 20, `only ${transitions} transitions found`);
  for (const delay of ["openConfirm", "stableAfter", "backoffDelay", "heartbeatDelay", "stopBudget"]) {
    assert.ok(svg.includes(`after: ${delay}`), `delay ${delay} is named`);
  }
  for (const src of ["projectEvents", "syncProjectState", "drainDispatch"]) assert.ok(svg.includes(`invoke ${src}`), `invoke ${src}`);
  assert.match(svg, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]* viewBox="0 0 [\d.]+ [\d.]+"/);
  assert.not.match(svg, /NaN|undefined/);
  console.log(
    `# statechart SVG: ${graph.nodes.length} states, ${graph.edges.length} arrows, ${transitions} transitions, ${svg.length} bytes`,
  );
});

exported("the graph follows the machine: regions, initial states, internal and re-entering transitions", () => {
  const g = createStateGraph(bridgeMachine);
  const node = (p: string) => g.nodes.find((n) => n.path === p)!;
  assert.equal(node("").children, ["connection", "heartbeat"]);
  assert.ok(node("connection").region && node("heartbeat").region);
  assert.is(node("connection").initial, "connection.idle");
  assert.is(node("connection.open").initial, "connection.open.connecting");
  assert.equal(node("connection.open").invokes, ["projectEvents"]);
  assert.equal(node("connection.open.streaming").entry, ["countStreamOpened", "requestSync"]);
  const internal = node("connection.open.streaming").internal.map((t) => t.event);
  assert.equal(internal, ["stream.events", "after: stableAfter"]);
  const syncing = node("heartbeat.syncing").internal;
  // The actor's reports of a round (listing, live ids, removals) change the window, never the state.
  const reports = ["sync.listed", "sync.live", "sync.removed"];
  assert.equal(
    syncing.filter((t) => !t.reenter).map((t) => t.event),
    reports,
  );
  assert.ok(syncing.filter((t) => !reports.includes(t.event)).every((t) => t.reenter));
  // A round past its deadline asks the connection first (a slow server is
  // not a dead link): it runs on when the link answers, else it ends and
  // the connection is suspect.
  const late = g.edges.find((e) => e.id === "heartbeat.syncing.deadline.inTime->heartbeat.syncing.deadline.probing")!;
  assert.is(late.transitions[0]!.event, "sync.late");
  const runOn = g.edges.find((e) => e.id === "heartbeat.syncing.deadline.probing->heartbeat.syncing.deadline.runningOn")!;
  assert.is(runOn.transitions[0]!.guard, "linkAnswered");
  assert.equal(runOn.transitions[0]!.actions, ["slowHeartbeat"]);
  const giveUp = g.edges.find((e) => e.id === "heartbeat.syncing.deadline.probing->heartbeat.waiting")!;
  assert.equal(giveUp.transitions[0]!.actions, ["recordSyncDeadline", "resumeFollowUp", "raiseSuspect"]);
  // A regular round due while reconnecting waits for the reopen's resync.
  const held = g.edges.find((e) => e.id === "heartbeat.waiting->heartbeat.held")!;
  assert.is(held.transitions[0]!.guard, "reconnecting");
  assert.ok(node("heartbeat.syncing").region === false && node("heartbeat.syncing.deadline").region);
});

exported("active paths list every active state of a parallel value", () => {
  assert.equal(activePaths({ connection: { open: "streaming" }, heartbeat: "waiting" }), [
    "",
    "connection",
    "connection.open",
    "connection.open.streaming",
    "heartbeat",
    "heartbeat.waiting",
  ]);
  assert.equal(activePaths("idle"), ["", "idle"]);
});

exported("any machine can be drawn, not only the bridge", async () => {
  const toggle = setup({}).createMachine({
    id: "toggle",
    initial: "off",
    states: { off: { on: { FLIP: "on" } }, on: { on: { FLIP: "off" }, after: { 500: "off" } } },
  });
  const { svg, json } = await exportMachine(toggle);
  assert.ok(svg.includes('data-state-path="on"') && svg.includes("after: 500"));
  assert.is(JSON.parse(json).id, "toggle");
});

function collectStates(node: typeof bridgeMachine.root): Record<string, typeof bridgeMachine.root> {
  const out: Record<string, typeof bridgeMachine.root> = { [node.id]: node };
  for (const child of Object.values(node.states)) Object.assign(out, collectStates(child as typeof node));
  return out;
}

exported.run();
