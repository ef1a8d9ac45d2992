/** More would only stretch a failover round; a fleet of instances sits behind fewer names. */
export const MAX_BROKER_URLS = 16;

/** A broker URL as given by a user: https, a host, nothing after the origin but `/`. Normalized. */
export function parseBrokerUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new Error(`bad broker URL "${input}": expected https://HOST[:PORT]`);
  }
  if (url.protocol !== 'https:') {
    throw new Error(`bad broker URL "${input}": the broker is only reached over https://`);
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new Error(`bad broker URL "${input}": give only https://HOST[:PORT]`);
  }
  return url.toString();
}

/**
 * Several broker instances (one database, one static key): each input is one URL or a
 * comma-separated list. Normalized, in the order given, duplicates dropped.
 */
export function parseBrokerUrls(inputs: readonly string[]): string[] {
  const urls: string[] = [];
  for (const input of inputs) {
    for (const part of input.split(',')) {
      const text = part.trim();
      if (text === '') continue;
      const url = parseBrokerUrl(text);
      if (!urls.includes(url)) urls.push(url);
    }
  }
  if (urls.length === 0) throw new Error('no broker URL given: expected https://HOST[:PORT]');
  if (urls.length > MAX_BROKER_URLS)
    throw new Error(`${urls.length} broker URLs given; at most ${MAX_BROKER_URLS}`);
  return urls;
}

/** The host to resolve in a broker URL, or null for an IP literal (nothing to resolve). */
export function brokerHostName(url: string): string | null {
  const host = new URL(url).hostname;
  if (host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return null;
  return host;
}
