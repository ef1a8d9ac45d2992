export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * `HOST:PORT` or `[V6]:PORT` as a listen flag takes it; an empty host means every address. Throws
 * an Error naming `flag` and the text for anything else (an IPv6 address without brackets, a port
 * outside 0-65535).
 */
export function parseListenAddress(flag: string, text: string): ListenAddress {
  const colon = text.lastIndexOf(':');
  const portText = text.slice(colon + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  let host = colon < 0 ? '' : text.slice(0, colon);
  let bad = colon < 0 || !(port >= 0 && port <= 65535);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) bad = true; // an IPv6 address needs brackets
  if (bad) throw new Error(`${flag} must be HOST:PORT (IPv6 in brackets), got "${text}"`);
  return { host: host || '0.0.0.0', port };
}
