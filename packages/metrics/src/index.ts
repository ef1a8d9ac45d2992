/**
 * @trellis/metrics: what the relay and the agent share to expose Prometheus metrics.
 *
 * - serveMetrics(source, host, port): `GET /metrics` over plain HTTP (source: a prom-client
 *   Registry, or anything with `contentType` and `metrics()`); boundPort(server).
 * - parseListenAddress(flag, text): `HOST:PORT` / `[V6]:PORT` for a `--metrics-listen` flag.
 */
export { type ListenAddress, parseListenAddress } from './listen-address';
export { boundPort, type MetricsSource, serveMetrics } from './serve';
