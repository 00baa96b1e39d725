/**
 * Prometheus text exposition (format 0.0.4) of the bridge's OpenTelemetry
 * instruments, for `run --health-port`. A pull MetricReader of
 * `@opentelemetry/sdk-metrics` collects on each scrape and a small
 * serialiser writes the text.
 *
 * The SDK is an optional peer dependency (2.x or 3.x), loaded here on
 * demand: the library needs only `@opentelemetry/api` (its instruments are
 * no-ops without an SDK), so installing engram-serverevents does not pull
 * the SDK in. Without the SDK only /metrics is lost: the meter provider is a
 * no-op one and collect() rejects with a BridgeError "failed_precondition"
 * naming the package, which the health server answers with 501; /healthz
 * does not need it.
 *
 * `@opentelemetry/exporter-prometheus` is not used for the text: it is a 0.x
 * package that pins its own exact sdk-metrics (3.x only, Node >= 22.15), so
 * it would load a second SDK beside a 2.x one the host installed.
 */
import { createNoopMeter, type MeterProvider } from "@opentelemetry/api";
import type * as SdkMetrics from "@opentelemetry/sdk-metrics";
import { BridgeError } from "../errors.js";

/** The optional package `--health-port` needs. */
export const sdkMetricsPackage = "@opentelemetry/sdk-metrics";

export interface PrometheusMetrics {
  /** Give this to createBridge({ meterProvider }) and to the sidecar's own instruments. */
  readonly meterProvider: MeterProvider;
  /** Collects every instrument now and returns the exposition text. */
  collect(): Promise<string>;
  /** Shuts the provider down. Idempotent. */
  shutdown(): Promise<void>;
  /** Why /metrics cannot be served (the SDK is not installed), or undefined when it can. */
  readonly unavailable: BridgeError | undefined;
}

export interface PrometheusMetricsOptions {
  /** Loads the SDK module. Defaults to a dynamic import of `@opentelemetry/sdk-metrics`. */
  load?: () => Promise<unknown>;
}

/** The content type of the exposition. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Loads the SDK and creates a meter provider with a pull reader. When the
 * SDK is absent (or is not the metrics SDK) it resolves all the same, with a
 * no-op provider, `unavailable` set, and a collect() that rejects with that
 * BridgeError "failed_precondition" naming the package to install.
 */
export async function createPrometheusMetrics(options: PrometheusMetricsOptions = {}): Promise<PrometheusMetrics> {
  const load = options.load ?? (() => import(sdkMetricsPackage));
  let sdk: typeof SdkMetrics;
  try {
    sdk = (await load()) as typeof SdkMetrics;
    if (typeof sdk.MetricReader !== "function" || typeof sdk.MeterProvider !== "function")
      throw new Error("not the OpenTelemetry metrics SDK");
  } catch (err) {
    const unavailable = new BridgeError(
      `/metrics needs the optional package ${sdkMetricsPackage}; install it next to engram-serverevents (npm install ${sdkMetricsPackage}) and restart`,
      "failed_precondition",
      { cause: err },
    );
    const meter = createNoopMeter();
    return {
      meterProvider: { getMeter: () => meter },
      collect: () => Promise.reject(unavailable),
      shutdown: () => Promise.resolve(),
      unavailable,
    };
  }
  class PullReader extends sdk.MetricReader {
    protected override async onForceFlush(): Promise<void> {}
    protected override async onShutdown(): Promise<void> {}
  }
  const reader = new PullReader();
  const provider = new sdk.MeterProvider({ readers: [reader] });
  let shut: Promise<void> | undefined;
  return {
    meterProvider: provider,
    async collect() {
      const { resourceMetrics } = await reader.collect();
      return serialize(sdk, resourceMetrics);
    },
    shutdown() {
      shut ??= provider.shutdown().catch(() => {});
      return shut;
    },
    unavailable: undefined,
  };
}

/** `engram.bridge.events.received` → `engram_bridge_events_received`. */
export function prometheusName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

function labelName(key: string): string {
  const s = key.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(s) || s.startsWith("__") ? `_${s}` : s;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labels(attributes: Record<string, unknown>, extra: Array<[string, string]> = []): string {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined && v !== null) pairs.push([labelName(k), String(v)]);
  pairs.push(...extra);
  return pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

function num(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** Unit suffixes as the OpenTelemetry-to-Prometheus convention writes them; annotations ({event}) and "1" add none. */
const unitSuffixes: Readonly<Record<string, string>> = { ms: "milliseconds", s: "seconds", By: "bytes" };

function serialize(sdk: typeof SdkMetrics, resourceMetrics: SdkMetrics.ResourceMetrics): string {
  const out: string[] = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const { descriptor } = metric;
      let name = prometheusName(descriptor.name);
      const suffix = unitSuffixes[descriptor.unit];
      if (suffix !== undefined && !name.endsWith(`_${suffix}`)) name = `${name}_${suffix}`;
      if (metric.dataPointType === sdk.DataPointType.SUM) {
        const monotonic = metric.isMonotonic;
        const full = monotonic ? `${name}_total` : name;
        out.push(`# HELP ${full} ${escapeHelp(descriptor.description)}`, `# TYPE ${full} ${monotonic ? "counter" : "gauge"}`);
        for (const p of metric.dataPoints) out.push(`${full}${labels(p.attributes)} ${num(p.value)}`);
      } else if (metric.dataPointType === sdk.DataPointType.GAUGE) {
        out.push(`# HELP ${name} ${escapeHelp(descriptor.description)}`, `# TYPE ${name} gauge`);
        for (const p of metric.dataPoints) out.push(`${name}${labels(p.attributes)} ${num(p.value)}`);
      } else if (metric.dataPointType === sdk.DataPointType.HISTOGRAM) {
        out.push(`# HELP ${name} ${escapeHelp(descriptor.description)}`, `# TYPE ${name} histogram`);
        for (const p of metric.dataPoints) {
          const { buckets, sum, count } = p.value;
          let cumulative = 0;
          buckets.boundaries.forEach((le, i) => {
            cumulative += buckets.counts[i] ?? 0;
            out.push(`${name}_bucket${labels(p.attributes, [["le", num(le)]])} ${cumulative}`);
          });
          out.push(`${name}_bucket${labels(p.attributes, [["le", "+Inf"]])} ${count}`);
          out.push(`${name}_sum${labels(p.attributes)} ${num(sum ?? 0)}`, `${name}_count${labels(p.attributes)} ${count}`);
        }
      }
      // Exponential histograms are not used by the bridge.
    }
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}
