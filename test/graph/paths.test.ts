/**
 * Paths generated from the bridge statechart's graph (@xstate/graph), each
 * replayed on a real bridge: every step is caused in the world (server,
 * clock, public API) and what the system shows is checked after each. The
 * last test is the coverage gate: every state and transition of the machine
 * must have been taken by the real bridge (seen through its inspection
 * events), or the suite fails naming what was missed.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import { machineStates, machineTransitions, runtimeUnreachable } from "../helpers/graph-model.js";
import { generatePaths } from "../helpers/graph-paths.js";
import { createCoverageRecorder, replayPath } from "../helpers/graph-world.js";

const generated = generatePaths();
const coverage = createCoverageRecorder();
const paths = suite("graph paths replayed on the real bridge");

paths("every edge of the graph has a path the world can play", () => {
  const origins = (o: string) => generated.paths.filter((p) => p.origin === o).length;
  console.log(
    `# graph: ${generated.vertices} states, ${generated.edges} edges; paths: ${origins("edge")} edge, ${origins("pair")} edge-pair, ` +
      `${origins("walk")} long random walks; ${generated.pairsInfeasible.length} edge pairs the timing cannot order`,
  );
  assert.ok(generated.paths.length > 0, "paths were generated");
  assert.equal(generated.infeasible, [], `edges with no playable path:\n${generated.infeasible.join("\n")}`);
  // A pair may only be left out because of the order of timers, never for want
  // of an executor or a state; or because it stops a bridge that never
  // connected (idle --STOP-->) and then waits for the stop budget, which only
  // runs out while a removal is being dispatched: from idle none can be.
  const neverConnected =
    /^\{"connection":"idle"[^}]*\} --STOP--> --xstate\.after\.stopBudget[^ ]*--> : .*only while a dispatch is in flight/;
  const odd = generated.pairsInfeasible.filter((why) => !/is due first|timer is not pending/.test(why) && !neverConnected.test(why));
  assert.equal(odd, [], odd.join("\n"));
});

for (const [i, path] of generated.paths.entries()) {
  paths(`path ${i + 1} (${path.origin}): ${path.name}`, () => replayPath(path, coverage));
}

paths("every state and transition of the machine was taken by the real bridge", () => {
  const states = machineStates(bridgeMachine);
  const transitions = machineTransitions(bridgeMachine);
  const coveredStates = states.filter((s) => coverage.states.has(s));
  const coveredTransitions = transitions.filter((t) => coverage.transitions.has(t.key));
  const declared = transitions.filter((t) => t.key in runtimeUnreachable);
  console.log(
    `# paths ${generated.paths.length}, states covered ${coveredStates.length}/${states.length}, ` +
      `transitions covered ${coveredTransitions.length}/${transitions.length}` +
      (declared.length ? ` (the other ${declared.length} cannot be taken by the runtime, listed)` : ""),
  );
  for (const t of declared) console.log(`# not causable by the runtime: ${t.label}: ${runtimeUnreachable[t.key]}`);

  const missingStates = states.filter((s) => !coverage.states.has(s));
  assert.equal(missingStates, [], `states no replayed path reached: ${missingStates.join(", ")}`);
  const missing = transitions.filter((t) => !coverage.transitions.has(t.key) && !(t.key in runtimeUnreachable));
  assert.equal(
    missing.map((t) => t.label),
    [],
    `transitions no replayed path took:\n${missing.map((t) => t.label).join("\n")}`,
  );
  // The declared list must stay true: each entry exists and was indeed not taken.
  const stale = Object.keys(runtimeUnreachable).filter((k) => !transitions.some((t) => t.key === k) || coverage.transitions.has(k));
  assert.equal(stale, [], `runtimeUnreachable lists transitions that are gone or were taken: ${stale.join(", ")}`);
});

paths.run();
