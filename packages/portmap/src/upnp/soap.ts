import { type Parsed, parsed, rejected } from '../types';
import { child, parseXml } from './xml';

// SOAP 1.1 as UPnP uses it: one action per request, string arguments, answers either an
// <u:ActionResponse> with string children or a Fault carrying <UPnPError><errorCode>.

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function encodeAction(
  serviceType: string,
  action: string,
  args: ReadonlyArray<[string, string]>,
): string {
  const body = args.map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`).join('');
  return (
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${body}</u:${action}></s:Body></s:Envelope>`
  );
}

export type SoapAnswer =
  | { kind: 'response'; values: Record<string, string> }
  | { kind: 'fault'; errorCode: number; description: string };

export function parseSoapAnswer(status: number, xml: string, action: string): Parsed<SoapAnswer> {
  const doc = parseXml(xml);
  if (!doc.ok) return doc;
  if (doc.value.name !== 'Envelope') return rejected('not a SOAP envelope');
  const body = child(doc.value, 'Body');
  if (body?.children.length !== 1) return rejected('Body must hold exactly one element');
  const content = body.children[0]!;
  if (content.name === 'Fault') {
    const error = child(child(content, 'detail') ?? content, 'UPnPError');
    const code = error ? child(error, 'errorCode')?.text.trim() : undefined;
    if (!code || !/^[0-9]{1,4}$/.test(code)) return rejected('fault without a UPnP error code');
    return parsed({
      kind: 'fault',
      errorCode: Number(code),
      description: (child(error!, 'errorDescription')?.text ?? '').slice(0, 200),
    });
  }
  if (status !== 200) return rejected(`HTTP ${status} without a fault`);
  if (content.name !== `${action}Response`) return rejected(`unexpected ${content.name}`);
  const values: Record<string, string> = {};
  for (const arg of content.children) {
    if (arg.children.length > 0) return rejected(`argument ${arg.name} is not a string`);
    values[arg.name] = arg.text;
  }
  return parsed({ kind: 'response', values });
}
