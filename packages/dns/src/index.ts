export {
  DnsResponder,
  encodeFitting,
  questionName,
  type Response,
  type Transport,
  type Unanswered,
} from './dns-responder';
export { DnsCounts, type DnsHandler, DnsServer, type DnsServerCounters } from './dns-server';
export { DEFAULT_RESPONSE_LIMITS, networkOf, ResponseLimiter, type ResponseLimits } from './response-limiter';
export {
  type AccountView,
  type AnswererOptions,
  EDNS_UDP_SIZE,
  type Query,
  RCODE,
  type Reply,
  truncated,
  ZoneAnswerer,
  type ZoneView,
} from './zone-answerer';
