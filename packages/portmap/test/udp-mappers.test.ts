import { createSocket, type Socket } from 'node:dgram';
import { NatPmpMapper } from '../src/natpmp/natpmp-mapper';
import { PcpMapper } from '../src/pcp/pcp-mapper';
import { PortMapError } from '../src/types';

// NAT-PMP and PCP mappers against a scripted gateway on loopback: hostile or stray datagrams before
// the real answer are skipped, silence and refusals become PortMapError rejections.

type Script = (request: Buffer) => Buffer[];

async function fakeGateway(script: Script): Promise<{ socket: Socket; port: number; requests: Buffer[] }> {
  const socket = createSocket('udp4');
  const requests: Buffer[] = [];
  socket.on('message', (request, rinfo) => {
    requests.push(request);
    for (const reply of script(request)) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: socket.address().port, requests };
}

const timeouts = { udpWaitsMs: [100, 100], httpTimeoutMs: 500 };
const junk = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(1500, 0xff), Buffer.alloc(16)];

function natPmpAnswer(request: Buffer, resultCode = 0): Buffer[] {
  if (request[1] === 0) {
    const reply = Buffer.from('0080000000000001' + '0b000001', 'hex');
    reply.writeUInt16BE(resultCode, 2);
    return [reply];
  }
  const reply = Buffer.alloc(16);
  reply[1] = 0x81;
  reply.writeUInt16BE(resultCode, 2);
  reply.writeUInt16BE(request.readUInt16BE(4), 8);
  reply.writeUInt16BE(request.readUInt32BE(8) === 0 ? 0 : 40000, 10);
  reply.writeUInt32BE(request.readUInt32BE(8), 12);
  return [reply];
}

function pcpAnswer(request: Buffer, resultCode = 0): Buffer[] {
  if (request[1] === 0) {
    const reply = Buffer.alloc(24);
    reply[0] = 2;
    reply[1] = 0x80;
    return [reply];
  }
  const reply = Buffer.alloc(60);
  reply[0] = 2;
  reply[1] = 0x81;
  reply[3] = resultCode;
  reply.writeUInt32BE(request.readUInt32BE(4), 4);
  request.copy(reply, 24, 24, 44); // nonce, protocol, internal port
  reply.writeUInt16BE(40000, 42);
  reply.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 11, 0, 0, 1], 44);
  return [reply];
}

describe('UDP mappers against a scripted gateway', () => {
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });
  const gateway = async (script: Script) => {
    const g = await fakeGateway(script);
    sockets.push(g.socket);
    return g;
  };

  it('NAT-PMP: skips junk, maps, renews with the granted port, and deletes with lifetime 0', async () => {
    const g = await gateway((request) => [...junk, ...natPmpAnswer(request)]);
    const mapper = new NatPmpMapper('127.0.0.1', timeouts, g.port);
    expect(await mapper.probe()).toBe(true);
    const mapping = await mapper.map(51820, 120);
    expect(mapping).toMatchObject({
      protocol: 'natpmp',
      externalIp: '11.0.0.1',
      externalPort: 40000,
      lifetimeSeconds: 120,
    });
    await mapper.renew(mapping);
    expect(g.requests.at(-1)!.readUInt16BE(6)).toBe(40000); // suggested = the port we hold
    await mapper.unmap(mapping);
    expect(g.requests.at(-1)!.toString('hex')).toBe('00010000ca6c000000000000');
  });

  it('NAT-PMP: a refusal and silence reject with PortMapError', async () => {
    const refusing = await gateway((request) => natPmpAnswer(request, request[1] === 0 ? 0 : 2));
    await expect(
      new NatPmpMapper('127.0.0.1', timeouts, refusing.port).map(51820, 120),
    ).rejects.toMatchObject({
      code: 2,
    });
    const silent = await gateway(() => []);
    const mapper = new NatPmpMapper('127.0.0.1', timeouts, silent.port);
    await expect(mapper.map(51820, 120)).rejects.toBeInstanceOf(PortMapError);
    expect(await mapper.probe()).toBe(false);
    expect(silent.requests.length).toBeGreaterThanOrEqual(2); // retransmitted
  });

  it('PCP: skips junk and foreign nonces, keeps the nonce for renew and delete', async () => {
    const g = await gateway((request) => {
      const foreign = Buffer.from(pcpAnswer(request)[0]!);
      foreign[24] = foreign[24]! ^ 0xff;
      return [...junk, foreign, ...pcpAnswer(request)];
    });
    const mapper = new PcpMapper('127.0.0.1', timeouts, g.port);
    expect(await mapper.probe()).toBe(true);
    const mapping = await mapper.map(51820, 120);
    expect(mapping).toMatchObject({ protocol: 'pcp', externalIp: '11.0.0.1', externalPort: 40000 });
    const nonce = g.requests.at(-1)!.subarray(24, 36).toString('hex');
    expect(g.requests.at(-1)!.subarray(20, 24)).toEqual(Buffer.from([127, 0, 0, 1])); // our client address
    const renewed = await mapper.renew(mapping);
    expect(g.requests.at(-1)!.subarray(24, 36).toString('hex')).toBe(nonce);
    await mapper.unmap(renewed);
    expect(g.requests.at(-1)!.subarray(24, 36).toString('hex')).toBe(nonce);
    expect(g.requests.at(-1)!.readUInt32BE(4)).toBe(0);
  });

  it('PCP: a refusal, silence and a NAT-PMP-only gateway reject or probe false', async () => {
    const refusing = await gateway((request) => pcpAnswer(request, 8));
    await expect(new PcpMapper('127.0.0.1', timeouts, refusing.port).map(51820, 120)).rejects.toMatchObject({
      code: 8,
    });
    const natPmpOnly = await gateway(() => [Buffer.from('0080000100000000', 'hex')]);
    const mapper = new PcpMapper('127.0.0.1', timeouts, natPmpOnly.port);
    expect(await mapper.probe()).toBe(false);
    await expect(mapper.map(51820, 120)).rejects.toBeInstanceOf(PortMapError);
    // A mapping this mapper never made has no nonce to renew with.
    await expect(
      mapper.renew({
        protocol: 'pcp',
        internalPort: 1,
        externalIp: '1.1.1.1',
        externalPort: 1,
        lifetimeSeconds: 1,
        expiresAt: 0,
      }),
    ).rejects.toBeInstanceOf(PortMapError);
  });
});
