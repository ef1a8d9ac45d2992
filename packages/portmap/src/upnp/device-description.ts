import { type Parsed, parsed, rejected } from '../types';
import { child, descendants, parseXml } from './xml';

// Finds the WAN connection service in an IGD device description and resolves its control URL.

export const WAN_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
];

export interface WanService {
  serviceType: string;
  controlUrl: URL;
}

export function findWanService(xml: string, location: URL): Parsed<WanService> {
  const doc = parseXml(xml);
  if (!doc.ok) return doc;
  if (doc.value.name !== 'root') return rejected(`root element is ${doc.value.name}`);
  const urlBase = child(doc.value, 'URLBase')?.text.trim();
  let base = location;
  if (urlBase) {
    try {
      base = new URL(urlBase);
    } catch {
      return rejected('URLBase is not a URL');
    }
  }
  const services = descendants(doc.value, 'service');
  for (const serviceType of WAN_SERVICE_TYPES) {
    const service = services.find((s) => child(s, 'serviceType')?.text.trim() === serviceType);
    if (!service) continue;
    const path = child(service, 'controlURL')?.text.trim();
    if (!path) return rejected(`${serviceType} has no controlURL`);
    let controlUrl: URL;
    try {
      controlUrl = new URL(path, base);
    } catch {
      return rejected('controlURL is not a URL');
    }
    // Same origin as the description we were pointed at: nothing else is the gateway.
    if (controlUrl.protocol !== 'http:' || controlUrl.host !== location.host) {
      return rejected('controlURL points away from the gateway');
    }
    return parsed({ serviceType, controlUrl });
  }
  return rejected('no WANIPConnection or WANPPPConnection service');
}
