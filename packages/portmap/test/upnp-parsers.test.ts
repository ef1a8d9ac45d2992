import { findWanService } from '../src/upnp/device-description';
import { encodeAction, parseSoapAnswer } from '../src/upnp/soap';
import { encodeSearch, parseSearchResponse } from '../src/upnp/ssdp';
import { parseXml, XML_LIMITS } from '../src/upnp/xml';
import { textMutations } from './support/fuzz';

// Shaped like miniupnpd's rootDesc.xml (trimmed): the WAN connection service sits three devices deep.
const DESCRIPTION = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337">
<specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
<friendlyName>Router &amp; co</friendlyName>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`;

const LOCATION = new URL('http://10.0.0.1:5000/rootDesc.xml');

const SSDP_OK = [
  'HTTP/1.1 200 OK',
  'CACHE-CONTROL: max-age=120',
  'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'USN: uuid:3d3cec3a::urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'EXT:',
  'SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1',
  'Location: http://10.0.0.1:5000/rootDesc.xml',
  '',
  '',
].join('\r\n');

const soapResponse = (inner: string) =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>${inner}</s:Body></s:Envelope>`;
const EXTERNAL_IP = soapResponse(
  '<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewExternalIPAddress>11.0.0.1</NewExternalIPAddress></u:GetExternalIPAddressResponse>',
);
const FAULT = soapResponse(
  '<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>',
);

describe('XML reader', () => {
  it('reads elements, attributes, entities, CDATA, comments; strips prefixes', () => {
    const doc = parseXml(
      `<?xml version="1.0"?><!-- c --><a:x y='1' z="&lt;&#65;&#x42;"><b>t&amp;u<![CDATA[<raw>]]></b><c/></a:x>`,
    );
    expect(doc).toEqual({
      ok: true,
      value: {
        name: 'x',
        attributes: { y: '1', z: '<AB' },
        text: '',
        children: [
          { name: 'b', attributes: {}, text: 't&u<raw>', children: [] },
          { name: 'c', attributes: {}, text: '', children: [] },
        ],
      },
    });
  });

  it.each([
    ['DOCTYPE (entity expansion)', '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'],
    ['unknown entity', '<x>&nbsp;</x>'],
    ['unterminated entity', '<x>a & b</x>'],
    ['mismatched tags', '<x><y></x></y>'],
    ['unclosed', '<x><y></y>'],
    ['two roots', '<x/><y/>'],
    ['text outside', 'junk<x/>'],
    ['unquoted attribute', '<x a=1/>'],
    ['duplicate attribute', '<x a="1" a="2"/>'],
    ['NUL reference', '<x>&#0;</x>'],
    ['surrogate reference', '<x>&#xD800;</x>'],
    ['empty', ''],
  ])('rejects %s', (_, input) => {
    expect(parseXml(input).ok).toBe(false);
  });

  it('caps size, depth and element count', () => {
    expect(parseXml(`<x>${'a'.repeat(XML_LIMITS.maxBytes)}</x>`).ok).toBe(false);
    expect(parseXml(`${'<a>'.repeat(40)}${'</a>'.repeat(40)}`).ok).toBe(false);
    expect(parseXml(`<x>${'<a/>'.repeat(XML_LIMITS.maxElements + 1)}</x>`).ok).toBe(false);
    expect(parseXml(`${'<a>'.repeat(20)}${'</a>'.repeat(20)}`).ok).toBe(true);
  });

  it('never throws on mutated documents', () => {
    for (const input of textMutations(DESCRIPTION, 4000)) expect(() => parseXml(input)).not.toThrow();
  });
});

describe('SSDP', () => {
  it('encodes an M-SEARCH', () => {
    expect(encodeSearch('urn:schemas-upnp-org:device:InternetGatewayDevice:1')).toBe(
      'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n' +
        'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n',
    );
  });

  it('accepts the gateway describing itself, header names in any case', () => {
    const result = parseSearchResponse(Buffer.from(SSDP_OK), '10.0.0.1');
    expect(result.ok && result.value.location.href).toBe('http://10.0.0.1:5000/rootDesc.xml');
  });

  it.each([
    ['a LOCATION on another host', SSDP_OK, '10.0.0.9'],
    ['a non-http LOCATION', SSDP_OK.replace('http://', 'file://'), '10.0.0.1'],
    ['credentials in LOCATION', SSDP_OK.replace('http://', 'http://u:p@'), '10.0.0.1'],
    ['another ST', SSDP_OK.replace('InternetGatewayDevice:2\r\nUSN', 'MediaServer:1\r\nUSN'), '10.0.0.1'],
    ['no LOCATION', SSDP_OK.replace(/Location:[^\r]*\r\n/, ''), '10.0.0.1'],
    ['two LOCATIONs', SSDP_OK.replace('EXT:', 'LOCATION: http://10.0.0.1/x'), '10.0.0.1'],
    ['an error status', SSDP_OK.replace('200 OK', '404 Not Found'), '10.0.0.1'],
    ['unterminated headers', SSDP_OK.slice(0, -4), '10.0.0.1'],
    ['a malformed header', SSDP_OK.replace('EXT:', 'EXT'), '10.0.0.1'],
    ['an oversized datagram', SSDP_OK.replace('EXT:', `X-PAD: ${'a'.repeat(3000)}`), '10.0.0.1'],
  ])('rejects %s', (_, text, from) => {
    expect(parseSearchResponse(Buffer.from(text, 'latin1'), from).ok).toBe(false);
  });

  it('never throws on mutated responses', () => {
    for (const input of textMutations(SSDP_OK, 3000, 3)) {
      expect(() => parseSearchResponse(Buffer.from(input, 'latin1'), '10.0.0.1')).not.toThrow();
    }
  });
});

describe('device description', () => {
  it('finds the WANIPConnection control URL, resolved against LOCATION', () => {
    expect(findWanService(DESCRIPTION, LOCATION)).toEqual({
      ok: true,
      value: {
        serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2',
        controlUrl: new URL('http://10.0.0.1:5000/ctl/IPConn'),
      },
    });
  });

  it('falls back to WANPPPConnection and honours URLBase on the same host', () => {
    const ppp = DESCRIPTION.replace('WANIPConnection:2', 'WANPPPConnection:1').replace(
      '<specVersion>',
      '<URLBase>http://10.0.0.1:5000/base/</URLBase><specVersion>',
    );
    const result = findWanService(ppp, LOCATION);
    expect(result.ok && result.value.controlUrl.href).toBe('http://10.0.0.1:5000/ctl/IPConn');
    const relative = ppp.replace('/ctl/IPConn', 'ctl');
    const resolved = findWanService(relative, LOCATION);
    expect(resolved.ok && resolved.value.controlUrl.href).toBe('http://10.0.0.1:5000/base/ctl');
  });

  it('refuses control URLs away from the gateway, and descriptions without a WAN service', () => {
    expect(findWanService(DESCRIPTION.replace('/ctl/IPConn', 'http://10.9.9.9/ctl'), LOCATION).ok).toBe(
      false,
    );
    expect(findWanService(DESCRIPTION.replace('/ctl/IPConn', '//evil.example/ctl'), LOCATION).ok).toBe(false);
    expect(findWanService(DESCRIPTION.replace('WANIPConnection:2', 'Other:1'), LOCATION).ok).toBe(false);
    expect(findWanService('<notroot/>', LOCATION).ok).toBe(false);
  });

  it('never throws on mutated descriptions', () => {
    for (const input of textMutations(DESCRIPTION, 3000, 5)) {
      const result = findWanService(input, LOCATION);
      if (result.ok) expect(result.value.controlUrl.host).toBe('10.0.0.1:5000');
    }
  });
});

describe('SOAP', () => {
  it('encodes an action with escaped arguments', () => {
    const body = encodeAction('urn:schemas-upnp-org:service:WANIPConnection:2', 'AddPortMapping', [
      ['NewPortMappingDescription', 'a<b&c'],
    ]);
    expect(body).toContain(
      '<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewPortMappingDescription>a&lt;b&amp;c</NewPortMappingDescription></u:AddPortMapping>',
    );
    expect(parseXml(body).ok).toBe(true);
  });

  it('reads a response and a UPnP fault', () => {
    expect(parseSoapAnswer(200, EXTERNAL_IP, 'GetExternalIPAddress')).toEqual({
      ok: true,
      value: { kind: 'response', values: { NewExternalIPAddress: '11.0.0.1' } },
    });
    expect(parseSoapAnswer(500, FAULT, 'AddPortMapping')).toEqual({
      ok: true,
      value: { kind: 'fault', errorCode: 718, description: 'ConflictInMappingEntry' },
    });
  });

  it('rejects answers for another action, errors without a fault, and faults without a code', () => {
    expect(parseSoapAnswer(200, EXTERNAL_IP, 'AddPortMapping').ok).toBe(false);
    expect(parseSoapAnswer(500, EXTERNAL_IP, 'GetExternalIPAddress').ok).toBe(false);
    expect(parseSoapAnswer(500, FAULT.replace('718', 'x'), 'AddPortMapping').ok).toBe(false);
    expect(parseSoapAnswer(200, '<Envelope><Body/></Envelope>', 'AddPortMapping').ok).toBe(false);
    const nested = EXTERNAL_IP.replace('11.0.0.1', '<a>11.0.0.1</a>');
    expect(parseSoapAnswer(200, nested, 'GetExternalIPAddress').ok).toBe(false);
  });

  it('never throws on mutated envelopes', () => {
    for (const input of [...textMutations(EXTERNAL_IP, 2000, 9), ...textMutations(FAULT, 2000, 11)]) {
      expect(() => parseSoapAnswer(500, input, 'GetExternalIPAddress')).not.toThrow();
    }
  });
});
