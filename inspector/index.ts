/**
 * The bridge's inspector: the statechart live in a browser, offline or in the
 * hosted Stately inspector. User-facing symbols first; types with `export type`.
 *
 *   const inspector = await startInspector();          // loopback, free port
 *   const bridge = createBridge({ registry, inspect: inspector.inspect });
 *   console.log(`inspector: ${inspector.url}`);
 *   …
 *   await bridge.stop();
 *   await inspector.close();
 */
export { startInspector } from "./start-inspector.js";
export type { InspectorHandle } from "./start-inspector.js";
export { validateInspectorOptions } from "./inspector-options.js";
export type { InspectorOptions, ResolvedInspectorOptions } from "./inspector-options.js";
export type { InspectorServerStats } from "./inspector-server.js";
export type {
  InspectorMessage,
  StatelyInspectionMessage,
  ActorInspectionMessage,
  EventInspectionMessage,
  SnapshotInspectionMessage,
  EmittedInspectionMessage,
  InspectionLimits,
} from "./inspection-events.js";
export { toInspectorMessage, inspectionLimits } from "./inspection-events.js";
export { createStateGraph, activePaths } from "./statechart-graph.js";
export type { StateGraph, StateGraphNode, StateGraphEdge, TransitionLabel } from "./statechart-graph.js";
export { layoutStatechart } from "./statechart-layout.js";
export { statechartSvg } from "./statechart-diagram.js";
export type { StatechartLayout } from "./statechart-layout.js";
export { renderStatechartSvg } from "./statechart-svg.js";
export { exportMachine, machineDefinitionJson, machineExportPaths } from "./machine-export.js";
export type { MachineExport } from "./machine-export.js";
