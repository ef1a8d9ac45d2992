import { API_PATHS } from '@trellis/proto';

/** Checks a broker URL given by a user: https, a host, nothing after the origin but `/`. */
export function parseBrokerUrl(input: string): URL {
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
  return url;
}

export function enrollUrl(broker: string): string {
  return new URL(API_PATHS.enroll, parseBrokerUrl(broker)).toString();
}

export function controlUrl(broker: string): string {
  const u = new URL(API_PATHS.control, parseBrokerUrl(broker));
  u.protocol = 'wss:';
  return u.toString();
}
