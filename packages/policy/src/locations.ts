import { type Node, type ParseError, parseTree, printParseErrorCode } from 'jsonc-parser';

export type IssuePath = Array<string | number>;

/** A problem in a policy file, located at the JSON node it is about (line and column 1-based). */
export interface PolicyIssue {
  message: string;
  line: number;
  column: number;
  path: IssuePath;
}

/** Deeper than any valid policy; stops hostile nesting before it costs stack. */
const MAX_DEPTH = 32;

/** Offsets to 1-based lines and columns of one text. */
export class LineMap {
  private readonly starts: number[] = [0];
  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }
  at(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo]! + 1 };
  }
}

export interface SyntaxResult {
  tree?: Node;
  errors: Array<{ message: string; offset: number }>;
}

/** The text's tree (comments and trailing commas allowed), or its syntax errors. */
export function parseSyntax(text: string): SyntaxResult {
  const errors: ParseError[] = [];
  let tree: Node | undefined;
  try {
    tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  } catch {
    // jsonc-parser recurses per nesting level: absurd nesting runs out of stack.
    return { errors: [{ message: 'the policy is nested too deeply', offset: 0 }] };
  }
  const out = errors.map((e) => ({ message: syntaxMessage(printParseErrorCode(e.error)), offset: e.offset }));
  if (out.length === 0 && tree === undefined) out.push({ message: 'the policy is empty', offset: 0 });
  return { tree, errors: out };
}

function syntaxMessage(code: string): string {
  // `CommaExpected` -> `JSON syntax: comma expected`
  const words = code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return `JSON syntax: ${words}`;
}

export interface ValueResult {
  value: unknown;
  problems: Array<{ message: string; node: Node; key: boolean }>;
}

/**
 * The tree as plain values, on objects without a prototype. `__proto__` is refused outright (zod
 * drops it from records without a word); duplicate keys are reported, since the later one would
 * silently win.
 */
export function treeToValue(root: Node): ValueResult {
  const problems: ValueResult['problems'] = [];
  const convert = (node: Node, depth: number): unknown => {
    if (depth > MAX_DEPTH) {
      problems.push({ message: 'nested too deeply', node, key: false });
      return null;
    }
    if (node.type === 'array') return (node.children ?? []).map((c) => convert(c, depth + 1));
    if (node.type !== 'object') return node.value;
    const obj: Record<string, unknown> = Object.create(null);
    for (const prop of node.children ?? []) {
      const [keyNode, valueNode] = prop.children ?? [];
      if (!keyNode || typeof keyNode.value !== 'string') continue;
      const key: string = keyNode.value;
      if (Object.hasOwn(obj, key))
        problems.push({ message: `duplicate key "${key}"`, node: keyNode, key: true });
      if (key === '__proto__') {
        problems.push({ message: 'the key "__proto__" is not allowed', node: keyNode, key: true });
        continue;
      }
      obj[key] = valueNode ? convert(valueNode, depth + 1) : null;
    }
    return obj;
  };
  return { value: convert(root, 0), problems };
}

/** Each object node's properties by key (the last of a name wins, as in the value). */
const propertyMaps = new WeakMap<Node, Map<string, Node>>();

function propertyOf(object: Node, key: string): Node | undefined {
  let props = propertyMaps.get(object);
  if (!props) {
    props = new Map();
    for (const p of object.children ?? []) {
      const k = p.children?.[0]?.value;
      if (typeof k === 'string') props.set(k, p);
    }
    propertyMaps.set(object, props);
  }
  return props.get(key);
}

/**
 * The node a path names, or the deepest existing node on the way (a missing key is reported at its
 * object). `key`: the property's key rather than its value.
 */
export function nodeAt(root: Node, path: IssuePath, key = false): Node {
  let node = root;
  for (const [i, step] of path.entries()) {
    let next: Node | undefined;
    if (node.type === 'array' && typeof step === 'number') next = node.children?.[step];
    else if (node.type === 'object') {
      const prop = propertyOf(node, String(step));
      next = prop && (key && i === path.length - 1 ? prop.children?.[0] : prop.children?.[1]);
    }
    if (!next) return node;
    node = next;
  }
  return node;
}

/** Builds issues against one text and its tree. */
export class Locator {
  private readonly lines: LineMap;
  constructor(
    text: string,
    private readonly root: Node,
  ) {
    this.lines = new LineMap(text);
  }
  issue(message: string, path: IssuePath, key = false): PolicyIssue {
    return { message, ...this.lines.at(nodeAt(this.root, path, key).offset), path };
  }
  atNode(message: string, node: Node, path: IssuePath): PolicyIssue {
    return { message, ...this.lines.at(node.offset), path };
  }
  position(path: IssuePath): { line: number; column: number } {
    return this.lines.at(nodeAt(this.root, path).offset);
  }
  /** The source text of a node, on one line. */
  source(path: IssuePath): string {
    const n = nodeAt(this.root, path);
    return this.lines.text
      .slice(n.offset, n.offset + n.length)
      .replace(/\s*\n\s*/g, ' ')
      .slice(0, 500);
  }
}

/** The path from the root to a node (for problems found while walking the tree). */
export function pathOf(node: Node): IssuePath {
  const path: IssuePath = [];
  let n: Node | undefined = node;
  while (n?.parent) {
    const p: Node = n.parent;
    if (p.type === 'property') {
      if (p.children?.[0] !== n) path.unshift(String(p.children?.[0]?.value));
      else path.unshift(String(n.value));
      n = p.parent;
    } else {
      path.unshift(p.children?.indexOf(n) ?? 0);
      n = p;
    }
  }
  return path;
}
