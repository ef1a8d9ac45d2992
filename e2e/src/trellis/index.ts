export { AgentRunner } from './agent';
export { BROKER_PORT, BrokerRunner, parseJson } from './broker';
export { cleanEnv, repoRoot, type TrellisBuild, trellisBuild } from './paths';
export { RELAY_PORTS, RELAY_TCP_PORT, RelayRunner } from './relay';
export { startTraffic, withTraffic } from './traffic';
