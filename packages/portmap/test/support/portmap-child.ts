import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import {
  defaultMappers,
  type MappingProtocol,
  NatPmpMapper,
  PcpMapper,
  type PortMapper,
  PortMappingClient,
  UpnpMapper,
} from '@trellis/portmap';

// Runs in the LAN namespace: a UDP socket on <internal port> that reports what reaches it, and a
// PortMappingClient for that port driven by JSON commands on stdin, reporting JSON lines on stdout.
// argv: <internal port> <protocol: pcp|natpmp|upnp|auto> <lifetime seconds>
// `map-once` assumes the lab's gateway (10.0.0.1) and a single protocol.

const [portArg, protocolArg, lifetimeArg] = process.argv.slice(2);
const internalPort = Number(portArg);
const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

const only = (gateway: string): PortMapper[] => {
  const byName: Record<MappingProtocol, () => PortMapper> = {
    pcp: () => new PcpMapper(gateway),
    natpmp: () => new NatPmpMapper(gateway),
    upnp: () => new UpnpMapper(gateway),
  };
  return protocolArg === 'auto' ? defaultMappers(gateway) : [byName[protocolArg as MappingProtocol]()];
};

const client = new PortMappingClient({
  internalPort,
  lifetimeSeconds: Number(lifetimeArg),
  mappersFor: only,
});
client.on('candidate', (candidate) => print({ event: 'candidate', candidate }));
client.on('mapped', (mapping) => print({ event: 'mapped', ...mapping }));
client.on('failure', (failure) => print({ event: 'failure', ...failure }));

const socket = createSocket('udp4');
socket.on('message', (message, rinfo) =>
  print({ event: 'received', data: message.toString(), from: `${rinfo.address}:${rinfo.port}` }),
);
socket.bind(internalPort, '0.0.0.0', () => print({ event: 'bound', port: internalPort }));

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { cmd: string };
  if (command.cmd === 'probe') void client.probe().then((offered) => print({ event: 'probed', offered }));
  if (command.cmd === 'start') client.start();
  if (command.cmd === 'stop') void client.stop().then(() => print({ event: 'stopped' }));
  // One mapping straight from the protocol's mapper, never renewed: shows the gateway's own expiry.
  if (command.cmd === 'map-once') {
    void only('10.0.0.1')[0]!
      .map(internalPort, Number(lifetimeArg))
      .then((mapping) => print({ event: 'mapped-once', ...mapping }))
      .catch((error: Error) => print({ event: 'failure', message: error.message }));
  }
});
process.on('SIGTERM', () => void client.stop().then(() => process.exit(0)));
