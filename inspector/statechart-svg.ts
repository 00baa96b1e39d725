/**
 * Renders a StatechartLayout to a standalone SVG document. Every state is a
 * `<g data-state-path="…">` and every transition arrow a `<g data-events="…">`,
 * so the inspector page can highlight active states and taken transitions
 * by toggling classes; the embedded style makes the file readable on its own
 * (docs/bridge-machine.svg).
 */
import { metrics, type LaidOutEdge, type LaidOutState, type Point, type StatechartLayout, type TextLine } from "./statechart-layout.js";

const fontFamily = `"DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace`;

/** The stylesheet embedded in every diagram (the page allows exactly this inline style by its hash). */
export const statechartStyle = `
.sc-root { font-family: ${fontFamily}; }
.sc-bg { fill: #ffffff; }
.sc-state > rect.sc-box { fill: #ffffff; stroke: #5b6475; stroke-width: 1.2; }
.sc-state.sc-compound > rect.sc-box { fill: #f6f7f9; }
.sc-state.sc-parallel > rect.sc-box { fill: #fbfbfc; stroke: #3b4252; stroke-width: 1.4; }
.sc-state.sc-region > rect.sc-box { fill: #f3f5f8; stroke-dasharray: 6 4; }
.sc-state.sc-final > rect.sc-inner { fill: none; stroke: #5b6475; stroke-width: 1; }
.sc-title { font-size: ${metrics.titleFontPx}px; font-weight: 700; fill: #1f2430; }
.sc-line { font-size: ${metrics.bodyFontPx}px; fill: #4c5566; }
.sc-line.sc-invoke { fill: #7a4fc4; }
.sc-line.sc-entry, .sc-line.sc-exit { fill: #2f7a55; }
.sc-divider { stroke: #d4d8e0; stroke-width: 1; }
.sc-edge path { fill: none; stroke: #7b8496; stroke-width: 1.3; }
.sc-edge.sc-initial-edge path { stroke: #3b4252; }
.sc-initial { fill: #3b4252; }
.sc-label rect { fill: #ffffff; fill-opacity: 0.92; stroke: #e3e6ec; stroke-width: 0.8; }
.sc-label text { font-size: ${metrics.labelFontPx}px; fill: #2b3a67; }
.sc-label text.sc-guard { fill: #9a5b00; }
.sc-label text.sc-action { fill: #5d6677; }
.sc-arrow { fill: #7b8496; }
.sc-active > rect.sc-box { stroke: #1a73e8; stroke-width: 2.6; }
.sc-active.sc-atomic > rect.sc-box, .sc-active.sc-final > rect.sc-box { fill: #e3efff; }
.sc-active > .sc-title { fill: #0b57d0; }
.sc-taken path { stroke: #e8710a; stroke-width: 2.6; }
.sc-taken .sc-label rect, .sc-label.sc-taken rect { stroke: #e8710a; }
.sc-line.sc-taken { fill: #e8710a; font-weight: 700; }
`;

/** The SVG document for `layout`. */
export function renderStatechartSvg(layout: StatechartLayout, options: { title?: string } = {}): string {
  const out: string[] = [];
  const w = layout.width;
  const h = layout.height;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="sc-root" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" data-machine-id="${esc(layout.machineId)}" role="img" aria-label="${esc(options.title ?? `${layout.machineId} statechart`)}">`,
  );
  out.push(`<title>${esc(options.title ?? `${layout.machineId} statechart`)}</title>`);
  out.push(`<style>${statechartStyle}</style>`);
  out.push(
    `<defs><marker id="sc-arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="sc-arrow" d="M0,0 L10,5 L0,10 z"/></marker></defs>`,
  );
  out.push(`<rect class="sc-bg" x="0" y="0" width="${w}" height="${h}"/>`);
  out.push(`<g class="sc-states">`);
  for (const s of layout.states) out.push(renderState(s));
  out.push(`</g>`);
  out.push(`<g class="sc-initials">`);
  for (const i of layout.initials) {
    out.push(
      `<circle class="sc-initial" cx="${n(i.x + i.width / 2)}" cy="${n(i.y + i.height / 2)}" r="${n(i.width / 2 - 1)}" data-initial-of="${esc(i.parent)}"/>`,
    );
  }
  out.push(`</g>`);
  out.push(`<g class="sc-edges">`);
  for (const e of layout.edges) out.push(renderEdgePath(e));
  out.push(`</g>`);
  // Labels last, so no arrow crosses over their text.
  out.push(`<g class="sc-labels">`);
  for (const e of layout.edges) if (e.label) out.push(renderEdgeLabel(e));
  out.push(`</g>`);
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}

function renderState(s: LaidOutState): string {
  const { node } = s;
  const classes = ["sc-state", `sc-${node.type}`];
  if (node.region) classes.push("sc-region");
  if (node.children.length === 0) classes.push("sc-leaf");
  const parts: string[] = [];
  parts.push(`<g class="${classes.join(" ")}" data-state-path="${esc(node.path)}" data-state-id="${esc(node.id)}">`);
  const radius = node.children.length > 0 ? 8 : 10;
  parts.push(`<rect class="sc-box" x="${n(s.x)}" y="${n(s.y)}" width="${n(s.width)}" height="${n(s.height)}" rx="${radius}"/>`);
  if (node.type === "final") {
    parts.push(
      `<rect class="sc-inner" x="${n(s.x + 3)}" y="${n(s.y + 3)}" width="${n(s.width - 6)}" height="${n(s.height - 6)}" rx="${radius - 2}"/>`,
    );
  }
  // A state with nothing but its name has it centred; others have a header line.
  const baseline =
    s.body.length === 0 && node.children.length === 0 ? s.y + s.height / 2 + metrics.titleFontPx * 0.35 : s.y + metrics.titleLinePx - 6;
  parts.push(`<text class="sc-title" x="${n(s.x + metrics.padXPx)}" y="${n(baseline)}">${esc(node.key)}</text>`);
  if (s.body.length > 0) {
    const lineY = s.y + metrics.titleLinePx;
    parts.push(`<line class="sc-divider" x1="${n(s.x + 1)}" y1="${n(lineY)}" x2="${n(s.x + s.width - 1)}" y2="${n(lineY)}"/>`);
    s.body.forEach((line, i) => {
      const y = lineY + (i + 1) * metrics.bodyLinePx - 3;
      parts.push(textLine(line, s.x + metrics.padXPx, y, "sc-line"));
    });
  }
  parts.push(`</g>`);
  return parts.join("");
}

function renderEdgePath(e: LaidOutEdge): string {
  const classes = ["sc-edge"];
  if (e.initial) classes.push("sc-initial-edge");
  return `<g class="${classes.join(" ")}" data-edge="${esc(e.id)}" data-source="${esc(e.source)}" data-target="${esc(e.target)}" data-events="${esc(e.eventTypes.join(" "))}"><path d="${pathData(e.points)}" marker-end="url(#sc-arrowhead)"/></g>`;
}

function renderEdgeLabel(e: LaidOutEdge): string {
  const label = e.label!;
  const parts: string[] = [];
  parts.push(`<g class="sc-label" data-edge="${esc(e.id)}" data-source="${esc(e.source)}" data-events="${esc(e.eventTypes.join(" "))}">`);
  parts.push(`<rect x="${n(label.x)}" y="${n(label.y)}" width="${n(label.width)}" height="${n(label.height)}" rx="3"/>`);
  label.lines.forEach((line, i) => {
    const y = label.y + metrics.labelPadPx + (i + 1) * metrics.labelLinePx - 3.5;
    parts.push(textLine(line, label.x + metrics.labelPadPx, y, ""));
  });
  parts.push(`</g>`);
  return parts.join("");
}

function textLine(line: TextLine, x: number, y: number, baseClass: string): string {
  const classes = [baseClass, `sc-${line.kind}`].filter((c) => c !== "").join(" ");
  const data = line.eventType !== undefined ? ` data-event="${esc(line.eventType)}"` : "";
  return `<text class="${classes}" x="${n(x)}" y="${n(y)}" xml:space="preserve"${data}>${esc(line.text)}</text>`;
}

/** An orthogonal route with slightly rounded corners. */
function pathData(points: readonly Point[]): string {
  if (points.length === 0) return "";
  const first = points[0]!;
  const d: string[] = [`M${n(first.x)},${n(first.y)}`];
  for (let i = 1; i < points.length; i++) {
    const p = points[i]!;
    const prev = points[i - 1]!;
    const next = points[i + 1];
    if (next === undefined) {
      d.push(`L${n(p.x)},${n(p.y)}`);
      continue;
    }
    const r = Math.min(6, dist(prev, p) / 2, dist(p, next) / 2);
    const a = toward(p, prev, r);
    const b = toward(p, next, r);
    d.push(`L${n(a.x)},${n(a.y)}`, `Q${n(p.x)},${n(p.y)} ${n(b.x)},${n(b.y)}`);
  }
  return d.join(" ");
}

function dist(a: Point, b: Point): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}

function toward(from: Point, to: Point, r: number): Point {
  const d = dist(from, to);
  if (d === 0) return from;
  return { x: from.x + ((to.x - from.x) * r) / d, y: from.y + ((to.y - from.y) * r) / d };
}

function n(v: number): string {
  const r = Math.round(v * 10) / 10;
  return Object.is(r, -0) ? "0" : String(r);
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
