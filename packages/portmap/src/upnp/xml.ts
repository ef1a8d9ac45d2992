import { type Parsed, parsed, rejected } from '../types';

// A deliberately small, strict XML reader for UPnP descriptions and SOAP envelopes: elements,
// attributes, text, comments, CDATA, processing instructions and the five predefined entities plus
// character references. DOCTYPE is refused (no entity expansion); size, depth and node count are capped.

export interface XmlElement {
  /** Local name, namespace prefix stripped. */
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
}

export const XML_LIMITS = { maxBytes: 65536, maxDepth: 32, maxElements: 4096 };

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeText(raw: string): string | undefined {
  let failed = false;
  const out = raw.replace(/&([^;&\s]{0,10});?/g, (match, body: string) => {
    if (!match.endsWith(';')) {
      failed = true;
      return '';
    }
    if (body in ENTITIES) return ENTITIES[body]!;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (!m) {
      failed = true;
      return '';
    }
    const code = m[1] !== undefined ? Number.parseInt(m[1], 16) : Number(m[2]);
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      failed = true;
      return '';
    }
    return String.fromCodePoint(code);
  });
  return failed ? undefined : out;
}

const localName = (qualified: string) => qualified.slice(qualified.indexOf(':') + 1);

export function parseXml(input: string): Parsed<XmlElement> {
  if (input.length > XML_LIMITS.maxBytes) return rejected('document too large');
  let at = 0;
  let count = 0;
  const stack: Array<{ element: XmlElement; qualified: string }> = [];
  let root: XmlElement | undefined;

  const skipSpace = () => {
    while (at < input.length && /\s/.test(input[at]!)) at++;
  };

  while (at < input.length) {
    const lt = input.indexOf('<', at);
    const text = input.slice(at, lt === -1 ? input.length : lt);
    if (text.length > 0) {
      const top = stack[stack.length - 1];
      if (!top) {
        if (text.trim() !== '') return rejected('text outside the root element');
      } else {
        if (text.includes(']]>')) return rejected('stray ]]>');
        const decoded = decodeText(text);
        if (decoded === undefined) return rejected('bad entity reference');
        top.element.text += decoded;
      }
    }
    if (lt === -1) break;
    at = lt;
    if (input.startsWith('<?', at)) {
      const end = input.indexOf('?>', at + 2);
      if (end === -1) return rejected('unterminated processing instruction');
      at = end + 2;
    } else if (input.startsWith('<!--', at)) {
      const end = input.indexOf('-->', at + 4);
      if (end === -1) return rejected('unterminated comment');
      at = end + 3;
    } else if (input.startsWith('<![CDATA[', at)) {
      const end = input.indexOf(']]>', at + 9);
      if (end === -1) return rejected('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (!top) return rejected('CDATA outside the root element');
      top.element.text += input.slice(at + 9, end);
      at = end + 3;
    } else if (input.startsWith('<!', at)) {
      return rejected('DOCTYPE and declarations are not accepted');
    } else if (input.startsWith('</', at)) {
      at += 2;
      const name = NAME.exec(input.slice(at, at + 256))?.[0];
      if (!name) return rejected('bad closing tag');
      at += name.length;
      skipSpace();
      if (input[at] !== '>') return rejected('bad closing tag');
      at++;
      const top = stack.pop();
      if (!top || top.qualified !== name) return rejected(`mismatched closing tag ${name}`);
      if (stack.length === 0) root = top.element;
    } else {
      at++;
      const qualified = NAME.exec(input.slice(at, at + 256))?.[0];
      if (!qualified) return rejected('bad tag name');
      at += qualified.length;
      if (root) return rejected('more than one root element');
      if (++count > XML_LIMITS.maxElements) return rejected('too many elements');
      if (stack.length >= XML_LIMITS.maxDepth) return rejected('nested too deeply');
      const element: XmlElement = { name: localName(qualified), attributes: {}, children: [], text: '' };
      for (;;) {
        const before = at;
        skipSpace();
        if (input.startsWith('/>', at) || input[at] === '>') break;
        if (at === before) return rejected('attributes must be separated by space');
        const attr = NAME.exec(input.slice(at, at + 256))?.[0];
        if (!attr) return rejected('bad attribute');
        at += attr.length;
        skipSpace();
        if (input[at] !== '=') return rejected('attribute without value');
        at++;
        skipSpace();
        const quote = input[at];
        if (quote !== '"' && quote !== "'") return rejected('unquoted attribute');
        const end = input.indexOf(quote, at + 1);
        if (end === -1) return rejected('unterminated attribute');
        const raw = input.slice(at + 1, end);
        if (raw.includes('<')) return rejected('< in attribute');
        const value = decodeText(raw);
        if (value === undefined) return rejected('bad entity reference');
        if (attr in element.attributes) return rejected('duplicate attribute');
        element.attributes[attr] = value;
        at = end + 1;
      }
      const parent = stack[stack.length - 1];
      parent?.element.children.push(element);
      if (input.startsWith('/>', at)) {
        at += 2;
        if (!parent) root = element;
      } else {
        at++;
        stack.push({ element, qualified });
      }
    }
  }
  if (stack.length > 0) return rejected('unclosed element');
  if (!root) return rejected('no root element');
  return parsed(root);
}

/** The first direct child named `name`. */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

/** Every descendant (depth-first, document order) named `name`. */
export function descendants(element: XmlElement, name: string): XmlElement[] {
  const found: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    for (const c of e.children) {
      if (c.name === name) found.push(c);
      walk(c);
    }
  };
  walk(element);
  return found;
}
