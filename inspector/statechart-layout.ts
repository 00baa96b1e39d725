/**
 * Lays a StateGraph out with elkjs (layered, hierarchy included, so edges
 * may cross state boundaries) and returns absolute boxes, edge routes and
 * label boxes. Text is measured for a monospace font, so sizes are the same
 * in Node and in any browser.
 */
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js";
import { BridgeError } from "../src/errors.js";
import type { StateGraph, StateGraphEdge, StateGraphNode, TransitionLabel } from "./statechart-graph.js";

/** Sizes of the drawing, in px; shared with the SVG renderer. */
export const metrics = {
  /** Width of one character of the monospace font, per px of font size. */
  charWidthEm: 0.6,
  titleFontPx: 13,
  bodyFontPx: 11,
  labelFontPx: 11,
  titleLinePx: 22,
  bodyLinePx: 15,
  labelLinePx: 14,
  padXPx: 10,
  padBottomPx: 8,
  labelPadPx: 4,
  initialDotPx: 12,
  /** Height of a state with nothing but its name. */
  leafHeightPx: 32,
  /** Longest label line before it wraps, in characters. */
  wrapChars: 34,
} as const;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

/** One line of text inside a state or a label, with its role for styling. */
export interface TextLine {
  text: string;
  kind: "title" | "invoke" | "entry" | "exit" | "event" | "guard" | "action" | "internal";
  /** The event type the line stands for (events and internal transitions), for live highlighting. */
  eventType?: string;
}

export interface LaidOutState extends Box {
  node: StateGraphNode;
  /** Lines under the title: invokes, entry/exit actions, internal transitions. */
  body: TextLine[];
}

export interface LaidOutEdge {
  id: string;
  source: string;
  target: string;
  /** Event types of its transitions, for live highlighting. */
  eventTypes: string[];
  /** Start, bend points, end. */
  points: Point[];
  label?: Box & { lines: TextLine[] };
  /** True for the arrow from a compound state's initial marker. */
  initial: boolean;
}

export interface StatechartLayout {
  machineId: string;
  width: number;
  height: number;
  /** In document order: parents before children. */
  states: LaidOutState[];
  /** Initial-state markers, by the compound state's path. */
  initials: Array<Box & { parent: string }>;
  edges: LaidOutEdge[];
}

/** Width in px of `text` in the monospace font at `fontPx`. */
export function textWidth(text: string, fontPx: number): number {
  return [...text].length * fontPx * metrics.charWidthEm;
}

/** The lines drawn inside a state under its title. */
export function stateBody(node: StateGraphNode): TextLine[] {
  const lines: TextLine[] = [];
  for (const src of node.invokes) lines.push({ text: `invoke ${src}`, kind: "invoke" });
  if (node.entry.length > 0) lines.push(...wrap(`entry / ${node.entry.join(", ")}`, "entry"));
  if (node.exit.length > 0) lines.push(...wrap(`exit / ${node.exit.join(", ")}`, "exit"));
  for (const t of node.internal) {
    const head = `${t.reenter ? "↻ " : ""}${t.event}${t.guard ? ` [${t.guard}]` : ""}`;
    const text = t.actions.length > 0 ? `${head} / ${t.actions.join(", ")}` : head;
    for (const line of wrap(text, "internal")) lines.push({ ...line, eventType: t.eventType });
  }
  return lines;
}

/** The lines of an edge label: per transition, the event (and guard), then its actions. */
export function edgeLabel(transitions: readonly TransitionLabel[]): TextLine[] {
  const lines: TextLine[] = [];
  for (const t of transitions) {
    lines.push({ text: t.event, kind: "event", eventType: t.eventType });
    if (t.guard) lines.push(...wrap(`[${t.guard}]`, "guard"));
    if (t.actions.length > 0) lines.push(...wrap(`/ ${t.actions.join(", ")}`, "action"));
  }
  return lines;
}

function wrap(text: string, kind: TextLine["kind"]): TextLine[] {
  const out: TextLine[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const next = line === "" ? word : `${line} ${word}`;
    if (line !== "" && [...next].length > metrics.wrapChars) {
      out.push({ text: line, kind });
      line = `  ${word}`;
    } else {
      line = next;
    }
  }
  if (line !== "") out.push({ text: line, kind });
  return out;
}

/** Path of the lowest state that contains both `a` and `b` (a compound parent of both, or the root). */
function commonAncestor(a: string, b: string, byPath: Map<string, StateGraphNode>): string {
  const chain = (p: string): string[] => {
    const out: string[] = [];
    for (let cur = byPath.get(p)?.parent ?? null; cur !== null; cur = byPath.get(cur)?.parent ?? null) out.push(cur);
    return out;
  };
  const up = new Set(chain(a));
  for (const p of chain(b)) if (up.has(p)) return p;
  return "";
}

function isLeaf(node: StateGraphNode): boolean {
  return node.children.length === 0;
}

function bodyWidth(lines: readonly TextLine[]): number {
  return Math.max(0, ...lines.map((l) => textWidth(l.text, metrics.bodyFontPx)));
}

function leafSize(node: StateGraphNode, body: readonly TextLine[]): { width: number; height: number } {
  const title = textWidth(node.key, metrics.titleFontPx);
  const width = Math.max(96, Math.ceil(Math.max(title, bodyWidth(body)) + 2 * metrics.padXPx));
  const height =
    body.length === 0 ? metrics.leafHeightPx : metrics.titleLinePx + body.length * metrics.bodyLinePx + metrics.padBottomPx + 4;
  return { width, height };
}

/** Space above a compound state's children: its title and body lines. */
function headerHeight(body: readonly TextLine[]): number {
  return metrics.titleLinePx + 8 + body.length * metrics.bodyLinePx + (body.length > 0 ? 8 : 0);
}

const initialId = (path: string) => `${path}#initial`;
const elkId = (path: string) => (path === "" ? "#root" : path);
const pathOfElkId = (id: string) => (id === "#root" ? "" : id);

/** Options shared by every layered run: top-down, orthogonal, model order kept. */
const layeredOptions: Record<string, string> = {
  "elk.algorithm": "layered",
  "elk.direction": "DOWN",
  "elk.edgeRouting": "ORTHOGONAL",
  "elk.layered.spacing.nodeNodeBetweenLayers": "40",
  "elk.spacing.nodeNode": "36",
  "elk.spacing.edgeNode": "16",
  "elk.spacing.edgeEdge": "12",
  "elk.spacing.edgeLabel": "4",
  "elk.layered.spacing.edgeNodeBetweenLayers": "16",
  "elk.edgeLabels.inline": "false",
  "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
  "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
  "elk.layered.cycleBreaking.strategy": "DEPTH_FIRST",
  "elk.randomSeed": "1",
};

/** How many levels `path` lies below `ancestor` (1 for a child). */
function depthBelow(path: string, ancestor: string): number {
  const rest = ancestor === "" ? path : path.slice(ancestor.length + 1);
  return rest === "" ? 0 : rest.split(".").length;
}

/** Whether an edge of `graph` has exactly one end inside the state at `path`. */
function hasCrossingEdge(path: string, graph: StateGraph): boolean {
  const inside = (p: string) => path === "" || p === path || p.startsWith(`${path}.`);
  return graph.edges.some((e) => inside(e.source) !== inside(e.target));
}

/** Lays `graph` out with elkjs. Deterministic for a given graph. */
export async function layoutStatechart(graph: StateGraph): Promise<StatechartLayout> {
  const byPath = new Map(graph.nodes.map((n) => [n.path, n]));
  const bodies = new Map(graph.nodes.map((n) => [n.path, stateBody(n)]));
  // Each edge lives in the lowest state that contains both ends; a parallel
  // state lays its regions out as separate boxes unless an edge crosses them.
  const edgesIn = new Map<string, ElkExtendedEdge[]>();
  const addEdge = (container: string, edge: ElkExtendedEdge) => {
    const list = edgesIn.get(container) ?? [];
    list.push(edge);
    edgesIn.set(container, list);
  };
  for (const edge of graph.edges) {
    const lines = edgeLabel(edge.transitions);
    addEdge(commonAncestor(edge.source, edge.target, byPath), {
      id: edge.id,
      sources: [elkId(edge.source)],
      targets: [elkId(edge.target)],
      labels: [
        {
          id: `${edge.id}#label`,
          text: lines.map((l) => l.text).join("\n"),
          width: Math.ceil(Math.max(...lines.map((l) => textWidth(l.text, metrics.labelFontPx))) + 2 * metrics.labelPadPx),
          height: lines.length * metrics.labelLinePx + 2 * metrics.labelPadPx,
        },
      ],
    });
  }
  for (const node of graph.nodes) {
    if (node.initial !== undefined) {
      addEdge(node.path, {
        id: `${initialId(node.path)}->${node.initial}`,
        sources: [initialId(node.path)],
        targets: [elkId(node.initial)],
      });
    }
  }

  const deepAt = (path: string) =>
    graph.edges.some(
      (e) => commonAncestor(e.source, e.target, byPath) === path && (depthBelow(e.source, path) > 1 || depthBelow(e.target, path) > 1),
    );
  const toElk = (node: StateGraphNode, inDeep = false): ElkNode => {
    const body = bodies.get(node.path) ?? [];
    if (isLeaf(node)) return { id: elkId(node.path), ...leafSize(node, body) };
    const children: ElkNode[] = [];
    if (node.initial !== undefined) {
      children.push({
        id: initialId(node.path),
        width: metrics.initialDotPx,
        height: metrics.initialDotPx,
        layoutOptions: { "elk.layered.layering.layerConstraint": "FIRST" },
      });
    }
    for (const c of node.children) {
      const child = byPath.get(c);
      if (child) children.push(toElk(child, inDeep || deepAt(node.path)));
    }
    const top = headerHeight(body);
    const minWidth = Math.ceil(Math.max(textWidth(node.key, metrics.titleFontPx), bodyWidth(body)) + 2 * metrics.padXPx);
    const ownEdges = edgesIn.get(node.path) ?? [];
    // Regions of a parallel state sit side by side, each laid out on its
    // own, unless an edge links them or leaves them (a nested parallel
    // state whose region has a transition out of it).
    const separate = node.type === "parallel" && ownEdges.length === 0 && !hasCrossingEdge(node.path, graph);
    // elkjs fails ("reading 'a'") ordering by model order across levels: a
    // state with an edge into a grandchild (a transition out of a nested
    // parallel state's region), and what it contains, are laid out without it.
    const deep = inDeep || deepAt(node.path);
    const { "elk.layered.considerModelOrder.strategy": _modelOrder, ...withoutModelOrder } = layeredOptions;
    return {
      id: elkId(node.path),
      children,
      edges: ownEdges,
      layoutOptions: {
        ...(deep ? withoutModelOrder : layeredOptions),
        "elk.hierarchyHandling": separate ? "SEPARATE_CHILDREN" : "INCLUDE_CHILDREN",
        ...(separate
          ? {
              "elk.algorithm": "rectpacking",
              "elk.spacing.nodeNode": "28",
              "elk.aspectRatio": "100",
              "elk.contentAlignment": "V_TOP H_LEFT",
            }
          : {}),
        "elk.padding": `[top=${top},left=16,bottom=16,right=16]`,
        "elk.nodeSize.constraints": "MINIMUM_SIZE",
        "elk.nodeSize.minimum": `(${minWidth}, ${top + 20})`,
      },
    };
  };

  const root = byPath.get("");
  if (!root) throw new Error("the state graph has no root");
  // Loaded on first use (1.6 MB), and only to draw a machine whose layout is
  // not committed: elkjs is a devDependency. elk.bundled.js is CommonJS: its
  // constructor is `module.exports.default`.
  const loadElk = () => import("elkjs/lib/elk.bundled.js");
  let elkModule: Awaited<ReturnType<typeof loadElk>>;
  try {
    elkModule = await loadElk();
  } catch (err) {
    throw new BridgeError(
      `inspector: drawing the statechart of "${graph.machineId}" needs elkjs, which is not installed (only the bridge machine's layout ships laid out): npm install --save-dev elkjs`,
      "unavailable",
      { cause: err },
    );
  }
  const elk = new elkModule.default.default();
  const laid: ElkNode = await elk.layout({
    id: "#graph",
    layoutOptions: {
      ...layeredOptions,
      "elk.hierarchyHandling": "SEPARATE_CHILDREN",
      "elk.json.edgeCoords": "ROOT",
      "elk.json.shapeCoords": "ROOT",
      "elk.padding": "[top=12,left=12,bottom=12,right=12]",
    },
    children: [toElk(root)],
  });

  const states: LaidOutState[] = [];
  const initials: StatechartLayout["initials"] = [];
  const walk = (n: ElkNode): void => {
    const path = pathOfElkId(n.id);
    const box = boxOf(n);
    if (n.id.endsWith("#initial")) {
      initials.push({ ...box, parent: n.id.slice(0, -"#initial".length) });
    } else if (n.id !== "#graph") {
      const node = byPath.get(path);
      if (node) states.push({ ...box, node, body: bodies.get(path) ?? [] });
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(laid);

  const outEdges: LaidOutEdge[] = [];
  const collectEdges = (n: ElkNode): void => {
    for (const e of n.edges ?? []) outEdges.push(toLaidOutEdge(e, graph));
    for (const c of n.children ?? []) collectEdges(c);
  };
  collectEdges(laid);
  outEdges.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  return {
    machineId: graph.machineId,
    width: round(laid.width ?? 0),
    height: round(laid.height ?? 0),
    states,
    initials,
    edges: outEdges,
  };
}

function toLaidOutEdge(e: ElkExtendedEdge, graph: StateGraph): LaidOutEdge {
  const points: Point[] = [];
  for (const s of e.sections ?? []) {
    points.push(pt(s.startPoint), ...(s.bendPoints ?? []).map(pt), pt(s.endPoint));
  }
  const source = pathOfElkId(e.sources[0] ?? "");
  const target = pathOfElkId(e.targets[0] ?? "");
  const initial = source.endsWith("#initial");
  const edge: StateGraphEdge | undefined = graph.edges.find((g) => g.id === e.id);
  const out: LaidOutEdge = {
    id: e.id,
    source: initial ? source.slice(0, -"#initial".length) : source,
    target,
    eventTypes: [...new Set(edge?.transitions.map((t) => t.eventType) ?? [])],
    points,
    initial,
  };
  const label = e.labels?.[0];
  if (edge && label) out.label = { ...boxOf(label), lines: edgeLabel(edge.transitions) };
  return out;
}

function boxOf(s: { x?: number; y?: number; width?: number; height?: number }): Box {
  return { x: round(s.x ?? 0), y: round(s.y ?? 0), width: round(s.width ?? 0), height: round(s.height ?? 0) };
}

function pt(p: { x: number; y: number }): Point {
  return { x: round(p.x), y: round(p.y) };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
