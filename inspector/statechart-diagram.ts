/**
 * The diagram the inspector page shows. The bridge machine's is laid out at
 * build time (`npm run machine:export` writes inspector/export/), so serving
 * it needs no elkjs; any other machine is laid out on first request with
 * elkjs, loaded on demand (a devDependency: without it, a clear error).
 */
import type { AnyStateMachine } from "xstate";
import { bridgeDiagram } from "./export/bridge-machine-diagram.js";
import { createStateGraph } from "./statechart-graph.js";
import { diagramTitle, statechartDigest } from "./statechart-digest.js";
import { renderStatechartSvg } from "./statechart-svg.js";

/** The SVG diagram of `machine`: the committed one when `machine` draws the same as it, else laid out now. */
export async function statechartSvg(machine: AnyStateMachine): Promise<string> {
  const graph = createStateGraph(machine);
  if (statechartDigest(graph) === bridgeDiagram.digest) return bridgeDiagram.svg;
  const { layoutStatechart } = await import("./statechart-layout.js");
  return renderStatechartSvg(await layoutStatechart(graph), { title: diagramTitle(graph.machineId) });
}
