import { checkPolicy, DEFAULT_POLICY_TEXT, parsePolicy } from '@trellis/policy';
import { compile } from './support/compile-helpers';
import { device, SAMPLE_DEVICES, SAMPLE_TEXT } from './support/sample';

describe('checkPolicy', () => {
  test('the sample passes its tests against the sample devices', () => {
    const r = checkPolicy(SAMPLE_TEXT, SAMPLE_DEVICES);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([]);
  });

  test('a failing test is an error at its expectation', () => {
    const text = SAMPLE_TEXT.replace(
      '"db:icmp"], "deny": ["db:22"]',
      '"db:icmp", "db:tcp/8200", "db:udp/54"], "deny": ["db:5432"]',
    );
    const r = checkPolicy(text, SAMPLE_DEVICES);
    expect(r.ok).toBe(false);
    expect(r.policy).toBeDefined();
    const line = text.split('\n').findIndex((l) => l.includes('"tests"')) + 1;
    expect(r.errors.map((e) => [e.message, e.line])).toEqual([
      ['test failed: laptop-1 -> db:tcp/8200 is denied (allowed: tcp 5432,8000-8100; udp 53; icmp)', line],
      ['test failed: laptop-1 -> db:udp/54 is denied (allowed: tcp 5432,8000-8100; udp 53; icmp)', line],
      ['test failed: laptop-1 -> db:5432 is allowed', line],
    ]);
    expect(r.errors[0]!.path).toEqual(['tests', 0, 'accept', 3]);
  });

  test('the failing part comes in the order of the text, at each target', () => {
    const text = '{\n  "tests": [\n    { "src": "a", "accept": ["b:22", "b:icmp"] }\n  ]\n}';
    const r = checkPolicy(text, [device('a', '100.100.0.1'), device('b', '100.100.0.2')]);
    expect(r.errors.map((e) => [e.line, e.column, e.path])).toEqual([
      [3, 30, ['tests', 0, 'accept', 0]],
      [3, 38, ['tests', 0, 'accept', 1]],
    ]);
  });

  test('a test naming a missing device fails', () => {
    const r = checkPolicy(
      '{"rules": [{"src": ["*"], "dst": ["*"]}], "tests": [{"src": "ghost", "accept": ["db:22"]}]}',
      [device('db', '100.100.0.1')],
    );
    expect(r.errors.map((e) => e.message)).toEqual(['test failed: no device is named "ghost"']);
    const r2 = checkPolicy('{"tests": [{"src": "db", "deny": ["ghost:icmp"]}]}', [
      device('db', '100.100.0.1'),
    ]);
    expect(r2.errors.map((e) => e.message)).toEqual(['test failed: no device is named "ghost"']);
  });

  test('a device never reaches itself, so a deny test on itself passes', () => {
    const r = checkPolicy(
      '{"rules": [{"src": ["*"], "dst": ["*"]}], "tests": [{"src": "a", "deny": ["a:22"]}]}',
      [device('a', '100.100.0.1')],
    );
    expect(r.ok).toBe(true);
  });

  test('a device name no device has is a warning, at the name', () => {
    const text =
      '{\n  "groups": { "group:x": ["printer"] },\n  "rules": [{ "src": ["scanner"], "dst": ["*"] }]\n}';
    const r = checkPolicy(text, SAMPLE_DEVICES);
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([
      { message: 'no device is named "printer"', line: 2, column: 27, path: ['groups', 'group:x', 0] },
      { message: 'no device is named "scanner"', line: 3, column: 23, path: ['rules', 0, 'src', 0] },
    ]);
    expect(
      checkPolicy(text, [device('printer', '100.100.0.1'), device('scanner', '100.100.0.2')]).warnings,
    ).toEqual([]);
  });

  test('parse errors come back unchanged', () => {
    const r = checkPolicy('{"rules": 1}', []);
    expect(r).toEqual({
      ok: false,
      errors: [expect.objectContaining({ line: 1, column: 11 })],
      warnings: [],
    });
  });
});

describe('text kept verbatim', () => {
  test('comments survive: the policy carries the exact text', () => {
    const r = parsePolicy(SAMPLE_TEXT);
    expect(r.ok && r.policy.text).toBe(SAMPLE_TEXT);
    expect(r.ok).toBe(true);
    expect(SAMPLE_TEXT).toContain('// rtsp');
    // Parsing the kept text again gives the same policy.
    if (!r.ok) throw new Error('sample must parse');
    const again = parsePolicy(r.policy.text);
    expect(again.ok && again.policy.rules).toEqual(r.policy.rules);
  });

  test('rules keep their line and own text', () => {
    const r = parsePolicy(SAMPLE_TEXT);
    if (!r.ok) throw new Error('sample must parse');
    expect(r.policy.rules.map((x) => [x.line, x.text])).toEqual([
      [
        9,
        '{ "src": ["group:eng"], "dst": ["tag:db"], "ports": ["tcp:5432", "tcp:8000-8100", "udp:53", "icmp"] }',
      ],
      [10, '{ "src": ["group:ops"], "dst": ["tag:cams"], "ports": ["tcp:554"] }'],
    ]);
  });
});

describe('DEFAULT_POLICY_TEXT', () => {
  test('is commented and allows everything with exactly one explicit rule', () => {
    expect(DEFAULT_POLICY_TEXT).toMatch(/\/\/ /);
    const r = parsePolicy(DEFAULT_POLICY_TEXT);
    if (!r.ok) throw new Error('default policy must parse');
    expect(r.warnings).toEqual([]);
    expect(r.policy.rules).toHaveLength(1);
    expect(r.policy.rules[0]!.text).toBe('{ "src": ["*"], "dst": ["*"] }');
    const a = device('a', '100.64.0.1');
    const b = device('b', '100.100.0.1', ['tag:x'], 'z@z.z');
    expect(compile(DEFAULT_POLICY_TEXT, [a, b]).access(a.id, b.id)).toEqual({ in: [{}], out: [{}] });
  });
});
