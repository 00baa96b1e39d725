/**
 * SVG plots from vega-lite specs, rendered headless with vega's
 * View.toSVG() (no browser, no canvas).
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface SeriesPoint {
  /** Seconds, x axis. */
  t: number;
  value: number;
  series: string;
}

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** "symlog" shows a 10,000/s spike and a 200/s plateau on one chart. */
  yScale?: "linear" | "symlog";
  width?: number;
  height?: number;
  /** Horizontal reference lines, e.g. N/60 and ±20 %. */
  rules?: Array<{ y: number; label: string }>;
  /** Shaded x ranges, e.g. the outage. */
  bands?: Array<{ from: number; to: number; label: string }>;
}

export function lineChartSpec(points: SeriesPoint[], o: LineChartOptions): TopLevelSpec {
  const layers: unknown[] = [];
  if (o.bands && o.bands.length > 0) {
    layers.push({
      data: { values: o.bands },
      mark: { type: "rect", opacity: 0.12, color: "#d62728" },
      encoding: { x: { field: "from", type: "quantitative" }, x2: { field: "to" } },
    });
    layers.push({
      data: { values: o.bands },
      mark: { type: "text", align: "left", baseline: "top", dx: 3, dy: 3, color: "#d62728", fontSize: 10 },
      encoding: { x: { field: "from", type: "quantitative" }, y: { value: 0 }, text: { field: "label" } },
    });
  }
  layers.push({
    data: { values: points },
    mark: { type: "line", interpolate: "step-after", strokeWidth: 1.2 },
    encoding: {
      x: { field: "t", type: "quantitative", title: o.xTitle },
      y: { field: "value", type: "quantitative", title: o.yTitle, scale: { type: o.yScale ?? "linear" } },
      color: { field: "series", type: "nominal", title: null, legend: { orient: "top", labelLimit: 400 } },
    },
  });
  if (o.rules && o.rules.length > 0) {
    layers.push({
      data: { values: o.rules },
      mark: { type: "rule", strokeDash: [4, 3], color: "#555" },
      encoding: { y: { field: "y", type: "quantitative" } },
    });
    layers.push({
      data: { values: o.rules },
      mark: { type: "text", align: "right", baseline: "bottom", color: "#555", fontSize: 10 },
      encoding: { y: { field: "y", type: "quantitative" }, x: { value: (o.width ?? 720) - 2 }, text: { field: "label" } },
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: o.title,
    width: o.width ?? 720,
    height: o.height ?? 260,
    layer: layers,
  } as TopLevelSpec;
}
