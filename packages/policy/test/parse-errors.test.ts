import { parsePolicy } from '@trellis/policy';
import { errorsOf, expectError, lines } from './support/issues';

describe('syntax', () => {
  test('a missing comma is located', () => {
    const text = lines('{', '  "rules": [', '    { "src": ["*"] "dst": ["*"] }', '  ]', '}');
    const errors = errorsOf(text);
    expect(errors[0]).toMatchObject({
      message: 'JSON syntax: comma expected',
      line: 3,
      column: 20,
      path: ['rules', 0, 'dst'],
    });
  });
  test('an unclosed object, an empty text, a bare value', () => {
    expect(errorsOf('{ "rules": []')[0]).toMatchObject({
      message: /close brace expected/,
      line: 1,
      column: 14,
    });
    expect(errorsOf('')[0]!.message).toMatch(/JSON syntax|empty/);
    expect(errorsOf('   // only a comment\n')[0]!.message).toMatch(/JSON syntax|empty/);
    expectError('[]', /expected object, got an array/, 1, 1, []);
    expectError('null', /expected object, got null/, 1, 1, []);
  });
  test('an unterminated comment and string', () => {
    expect(errorsOf('{ /* no end')[0]!.message).toMatch(/JSON syntax/);
    expect(errorsOf('{ "rules\n": [] }')[0]!.message).toMatch(/JSON syntax/);
  });
  test('comments and trailing commas are fine', () => {
    const r = parsePolicy('// top\n{ /* a */ "rules": [ { "src": ["*"], "dst": ["*"], }, ], // end\n}');
    expect(r.ok).toBe(true);
  });
  test('absurd nesting is an error, not a crash', () => {
    expect(errorsOf(`{"rules": ${'['.repeat(100_000)}`).length).toBeGreaterThan(0);
    const deep = errorsOf(`{"rules": ${'['.repeat(5000)}${']'.repeat(5000)}}`);
    expect(deep.some((e) => /nested too deeply/.test(e.message))).toBe(true);
  });
  test('a duplicate key points at the second key', () => {
    expectError(lines('{', '  "rules": [],', '  "rules": []', '}'), /duplicate key "rules"/, 3, 3, ['rules']);
  });
});

describe('schema', () => {
  test('an unknown top-level key points at the key', () => {
    expectError(
      lines('{', '  "rules": [],', '  "acls": []', '}'),
      /unknown key "acls" \(sections: groups/,
      3,
      3,
      ['acls'],
    );
  });
  test('an unknown key in a rule', () => {
    expectError(
      '{"rules": [{"src": ["*"], "dst": ["*"], "action": "accept"}]}',
      /unknown key "action"/,
      1,
      41,
      ['rules', 0, 'action'],
    );
  });
  test('a wrong type points at the value', () => {
    expectError(lines('{', '  "rules": {}', '}'), /expected array, got an object/, 2, 12, ['rules']);
    expectError('{"groups": {"group:a": ["x", 7]}}', /expected string, got the number 7/, 1, 30, [
      'groups',
      'group:a',
      1,
    ]);
  });
  test('a missing key points at its object', () => {
    expectError(lines('{ "rules": [', '  { "dst": ["*"] }', '] }'), /missing "src"/, 2, 3, [
      'rules',
      0,
      'src',
    ]);
  });
  test('empty src, dst and ports', () => {
    expectError('{"rules": [{"src": [], "dst": ["*"]}]}', /at least one source/, 1, 20);
    expectError('{"rules": [{"src": ["*"], "dst": []}]}', /at least one destination/, 1, 34);
    expectError('{"rules": [{"src": ["*"], "dst": ["*"], "ports": []}]}', /at least one port spec/, 1, 50);
  });
  test.each([
    ['tcp:0', /ports are 1-65535/],
    ['tcp:65536', /ports are 1-65535/],
    ['tcp:90-80', /ends before it starts/],
    ['icmp:5', /icmp has no ports/],
    ['sctp:5', /not a port spec/],
    ['tcp:', /must be a number/],
    ['tcp:1-2-3', /must be a number/],
    ['TCP:22', /not a port spec/],
    ['22', /not a port spec/],
    ['', /not a port spec/],
  ])('bad port spec %j', (spec, message) => {
    const text = lines(
      '{ "rules": [',
      `  { "src": ["*"], "dst": ["*"], "ports": ["udp:53", ${JSON.stringify(spec)}] }`,
      '] }',
    );
    expectError(text, message, 2, 53, ['rules', 0, 'ports', 1]);
  });
  test('bad names of groups, tags and blocks point at the key', () => {
    expectError('{"groups": {"eng": []}}', /invalid name "eng": must be group:NAME/, 1, 13, [
      'groups',
      'eng',
    ]);
    expectError('{"tagOwners": {"tag:Cams": []}}', /invalid name "tag:Cams": must be tag:NAME/, 1, 16);
    expectError(
      '{"cidrs": {"site_a": "100.64.0.0/16"}}',
      /invalid name "site_a": must be a block name/,
      1,
      12,
    );
  });
  test('bad CIDR text, host bits, outside the overlay', () => {
    const cidr = (c: string) => `{\n  "cidrs": {\n    "a": ${JSON.stringify(c)}\n  }\n}`;
    expectError(cidr('100.64.0.0'), /not a prefix a\.b\.c\.d\/n/, 3, 10, ['cidrs', 'a']);
    expectError(cidr('100.64.0.0/33'), /not a prefix/, 3, 10);
    expectError(cidr('100.64.300.0/24'), /not a prefix/, 3, 10);
    expectError(cidr('100.64.1.0/16'), /host bits set/, 3, 10);
    expectError(cidr('10.0.0.0/8'), /not inside the overlay 100\.64\.0\.0\/10/, 3, 10);
    expectError(cidr('100.0.0.0/8'), /not inside the overlay/, 3, 10);
    expect(parsePolicy(cidr('100.64.0.0/10')).ok).toBe(true);
  });
  test('associations are pairs of strings', () => {
    expectError('{"associations": [["a"]]}', /missing entry 2/, 1, 19, ['associations', 0, 1]);
    expectError('{"associations": "a"}', /expected array/, 1, 18);
  });
  test('bad test targets', () => {
    const t = (target: string) =>
      lines('{', '  "tests": [', `    { "src": "a", "accept": [${JSON.stringify(target)}] }`, '  ]', '}');
    for (const bad of [
      'db',
      'db:',
      'db:0',
      'db:70000',
      'db:sctp/5',
      'db:icmp/5',
      'DB:22',
      'db:tcp/',
      ':22',
    ]) {
      expectError(t(bad), /test target|ports are 1-65535/, 3, 30, ['tests', 0, 'accept', 0]);
    }
  });
  test('an unknown key in a test', () => {
    expectError('{"tests": [{"src": "a", "allow": []}]}', /unknown key "allow"/, 1, 25);
  });
});
