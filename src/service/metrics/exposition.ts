/**
 * Prometheus text exposition (format 0.0.4). prom-client's registry is built for a long-lived
 * Node process (default process metrics, cluster aggregation); here every scrape builds its samples
 * afresh from the pairs' state, so a small writer of exactly the format is the simpler part.
 */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Metric {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

export function exposition(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = s.labels ? Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`) : [];
      lines.push(`${m.name}${labels.length ? `{${labels.join(",")}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
