export * from './access';
export * from './access-mesh';
export { AgentRunner } from './agent';
export type { BrokerInstanceOptions } from './broker';
export { BROKER_PORT, BrokerRunner, parseJson } from './broker';
export { LabDatabase } from './lab-database';
export { cleanEnv, repoRoot, type TrellisBuild, trellisBuild } from './paths';
export { RELAY_PORTS, RELAY_TCP_PORT, RelayRunner } from './relay';
export { startTraffic, withTraffic } from './traffic';
