import { parsePolicy } from '@trellis/policy';
import { errorsOf, expectError, lines } from './support/issues';

describe('references', () => {
  test('an unknown group in a rule', () => {
    const text = lines('{', '  "rules": [', '    { "src": ["group:eng"], "dst": ["*"] }', '  ]', '}');
    expectError(text, /unknown group "group:eng"/, 3, 15, ['rules', 0, 'src', 0]);
  });
  test('an unknown group in a group and in tagOwners', () => {
    expectError('{"groups": {"group:a": ["group:b"]}}', /unknown group "group:b"/, 1, 25, [
      'groups',
      'group:a',
      0,
    ]);
    expectError('{"tagOwners": {"tag:x": ["group:b"]}}', /unknown group "group:b"/, 1, 26, [
      'tagOwners',
      'tag:x',
      0,
    ]);
  });
  test('a tag owner must be a group or a user', () => {
    expectError('{"tagOwners": {"tag:x": ["laptop"]}}', /group:NAME or user:EMAIL/, 1, 26);
    expectError('{"tagOwners": {"tag:x": ["tag:x"]}}', /group:NAME or user:EMAIL/, 1, 26);
  });
  test('a tag not declared in tagOwners', () => {
    expectError(
      '{"rules": [{"src": ["*"], "dst": ["tag:db"]}]}',
      /tag "tag:db" is not declared in tagOwners/,
      1,
      35,
      ['rules', 0, 'dst', 0],
    );
    expectError('{"groups": {"group:a": ["tag:db"]}}', /not declared/, 1, 25);
  });
  test('an unknown block', () => {
    expectError('{"rules": [{"src": ["cidr:site-a"], "dst": ["*"]}]}', /unknown block "site-a"/, 1, 21);
    expectError(
      '{"cidrs": {"a": "100.64.0.0/16"},\n "associations": [["a", "b"]]}',
      /unknown block "b"/,
      2,
      25,
      ['associations', 0, 1],
    );
  });
  test('bad selectors', () => {
    for (const bad of ['Laptop', 'autogroup:member', 'user:nobody', 'tag:', 'group:', 'cidr:', 'a b', '-x']) {
      expectError(`{"rules": [{"src": ${JSON.stringify([bad])}, "dst": ["*"]}]}`, /.+/, 1, 21);
    }
    expectError('{"groups": {"group:a": ["*"]}}', /cannot be a group member/, 1, 25);
  });
  test('a group cycle points at the member that closes it', () => {
    const text = lines(
      '{',
      '  "groups": {',
      '    "group:a": ["x", "group:b"],',
      '    "group:b": ["group:c"],',
      '    "group:c": ["group:a"]',
      '  }',
      '}',
    );
    expectError(text, /group cycle: group:a -> group:b -> group:c -> group:a/, 5, 17, [
      'groups',
      'group:c',
      0,
    ]);
    expectError('{"groups": {"group:a": ["group:a"]}}', /group cycle: group:a -> group:a/, 1, 25);
  });
  test('two blocks with the same prefix', () => {
    const text = lines(
      '{',
      '  "cidrs": {',
      '    "a": "100.64.0.0/16",',
      '    "b": "100.64.0.0/16"',
      '  }',
      '}',
    );
    expectError(text, /block "b" has the same prefix 100\.64\.0\.0\/16 as block "a"/, 4, 10, ['cidrs', 'b']);
  });
  test('a test src that is not a device name', () => {
    expectError('{"tests": [{"src": "group:eng", "accept": []}]}', /device name/, 1, 20, ['tests', 0, 'src']);
  });
  test('too many distinct port ranges', () => {
    const ports = Array.from({ length: 300 }, (_, i) => `tcp:${2 * i + 1}`);
    const errors = errorsOf(JSON.stringify({ rules: [{ src: ['*'], dst: ['*'], ports }] }));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      message: /more than 256 distinct tcp port ranges/,
      path: ['rules', 0, 'ports', 256],
    });
  });
  test('several errors come back in text order', () => {
    const text = lines(
      '{',
      '  "rules": [',
      '    { "src": ["group:x"], "dst": ["tag:y"] },',
      '    { "src": ["cidr:z"], "dst": ["*"] }',
      '  ]',
      '}',
    );
    expect(errorsOf(text).map((e) => [e.line, e.column])).toEqual([
      [3, 15],
      [3, 35],
      [4, 15],
    ]);
  });
});

describe('hostile keys', () => {
  test('__proto__ is refused, and pollutes nothing', () => {
    expectError('{"groups": {"__proto__": ["x"]}}', /the key "__proto__" is not allowed/, 1, 13, [
      'groups',
      '__proto__',
    ]);
    expectError('{"__proto__": {"rules": []}}', /the key "__proto__" is not allowed/, 1, 2, ['__proto__']);
    expect(({} as Record<string, unknown>).rules).toBeUndefined();
  });
  test('groups that expand to too many members', () => {
    const groups: Record<string, string[]> = {};
    for (let g = 0; g < 300; g++)
      groups[`group:g${g}`] = [`group:g${g + 1}`, ...Array.from({ length: 10 }, (_, i) => `h${g}-${i}`)];
    groups['group:g300'] = ['x'];
    expect(errorsOf(JSON.stringify({ groups })).map((e) => e.message)).toEqual([
      'groups expand to more than 200000 members in all',
    ]);
  });
});

describe('warnings', () => {
  test('an empty group', () => {
    const r = parsePolicy('{"groups": {"group:a": []}}');
    expect(r.ok && r.warnings).toEqual([
      { message: 'group "group:a" has no members', line: 1, column: 13, path: ['groups', 'group:a'] },
    ]);
  });
});
