export * from './addresses';
export * from './capture';
export { ExecError, type ExecOptions, type ExecResult, exec, execQuiet, inNamespace } from './exec';
export * from './gateway-lab';
export { Host, Internet } from './internet';
export { Lab, type LabOptions } from './lab';
export { LabProcess } from './lab-process';
export { digA, LAB_RESOLVED_DIR, NamespaceResolvConf, ResolvedDaemon, UnboundResolver } from './name-servers';
export { LAB_PREFIX_RE, labPrefix, ownerPid } from './names';
export { Namespace, ping } from './namespace';
export * from './netcat';
export { lostReplies, replySeqs, replyTimes } from './ping-output';
export * from './router-kinds';
export { Device, Site } from './site';
export { Steps } from './steps';
export { labNamespaces, listWgSockets, sweepStale } from './sweep';
export * from './tcp-banner';
export * from './trellis';
export { firstLogTime, logExcerpt } from './trellis/log-lines';
export * from './udp-probe';
export {
  type EchoMessage,
  type PeerPlan,
  type Received,
  received,
  startUdpEcho,
  startUdpPeer,
  udpPeer,
} from './udp-tools';
export { sleep, waitFor } from './wait';
export { HandWireGuard, parseWgDump, type WgDump, type WgPeerDump, wgDump, wgKeyPair } from './wireguard';
