/** What the trace reads of a prom-client metric. */
interface Metric {
  get(): Promise<{ values: Array<{ value: number; labels?: Record<string, string | number | undefined> }> }>;
}

/** Each series of a metric as `label=value` (or the bare value when it has no labels). */
async function series(metric: Metric): Promise<string> {
  const { values } = await metric.get();
  if (values.length === 0) return '0';
  return values
    .map((v) => {
      const labels = Object.values(v.labels ?? {}).join(',');
      return labels ? `${labels}=${v.value}` : String(v.value);
    })
    .join(' ');
}

/**
 * `BENCH_TRACE=<seconds>`: the broker prints a line of its admission and resume metrics and its
 * CPU use to stderr that often, so a storm can be followed as it happens.
 */
export function startBrokerTrace(metrics: Record<string, Metric>, everySec: number): void {
  let cpu = process.cpuUsage();
  let at = performance.now();
  const started = at;
  const tick = async () => {
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    const busy = (used.user + used.system) / 1000 / (now - at);
    cpu = process.cpuUsage();
    at = now;
    const parts = await Promise.all(
      Object.entries(metrics).map(async ([name, m]) => `${name}[${await series(m)}]`),
    );
    const t = ((now - started) / 1000).toFixed(0);
    console.error(`trace t=${t}s cpu=${(busy * 100).toFixed(0)}% ${parts.join(' ')}`);
  };
  setInterval(() => void tick(), everySec * 1000).unref();
}
