import { API_PATHS, type BrokerTarget, parseBrokerUrl as parseBrokerUrlText } from '@trellis/proto';

export { parseBrokerUrls } from '@trellis/proto';

/** Checks a broker URL given by a user: https, a host, nothing after the origin but `/`. */
export function parseBrokerUrl(input: string): URL {
  return new URL(parseBrokerUrlText(input));
}

/** The URL of one of the broker's HTTP endpoints (API_PATHS). */
export function brokerEndpointUrl(broker: string, path: string): string {
  return new URL(path, parseBrokerUrl(broker)).toString();
}

export function controlUrl(broker: string): string {
  const u = new URL(API_PATHS.control, parseBrokerUrl(broker));
  u.protocol = 'wss:';
  return u.toString();
}

/** `https://host:port/`, or `https://host:port/ (address)` when the agent picked the name's address. */
export function describeTarget(target: BrokerTarget): string {
  return target.address === null ? target.url : `${target.url} (${target.address})`;
}

/** Whether two lists of one broker's URLs name an instance in common (the same broker). */
export function sharesUrl(a: readonly string[], b: readonly string[]): boolean {
  return a.some((url) => b.includes(url));
}
