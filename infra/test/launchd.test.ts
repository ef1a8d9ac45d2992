import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INFRA } from './helpers';

// plutil is not here: the plist is parsed strictly by the small reader below (Apple's DTD: dict of
// key/value pairs, array, string, integer, true, false; comments; nothing else).
const FILE = join(INFRA, 'launchd', 'net.trellis.trellisd.plist');

type Plist = string | number | boolean | Plist[] | { [key: string]: Plist };

function parsePlist(xml: string): Plist {
  const body = xml
    .replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\s*/, '')
    .replace(
      /<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN" "http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd">\s*/,
      '',
    )
    .replace(/<!--[\s\S]*?-->/g, '');
  const tokens = body.match(/<[^>]+>|[^<]+/g)!.filter((t) => t.trim() !== '');
  let i = 0;
  const expect = (tag: string) => {
    if (tokens[i] !== tag) throw new Error(`expected ${tag}, found ${tokens[i]}`);
    i++;
  };
  const text = (tag: string): string => {
    expect(`<${tag}>`);
    const t = tokens[i]?.startsWith('<') ? '' : (tokens[i++] ?? '');
    expect(`</${tag}>`);
    if (/[<>]|&(?!(amp|lt|gt|quot|apos);)/.test(t)) throw new Error(`bad text in <${tag}>: ${t}`);
    return t;
  };
  const value = (): Plist => {
    const t = tokens[i];
    if (t === '<true/>' || t === '<false/>') {
      i++;
      return t === '<true/>';
    }
    if (t === '<string>') return text('string');
    if (t === '<integer>') {
      const n = text('integer');
      if (!/^-?\d+$/.test(n)) throw new Error(`not an integer: ${n}`);
      return Number(n);
    }
    if (t === '<array>') {
      i++;
      const out: Plist[] = [];
      while (tokens[i] !== '</array>') out.push(value());
      i++;
      return out;
    }
    if (t === '<dict>') {
      i++;
      const out: Record<string, Plist> = {};
      while (tokens[i] !== '</dict>') {
        const key = text('key');
        if (key in out) throw new Error(`duplicate key ${key}`);
        out[key] = value();
      }
      i++;
      return out;
    }
    throw new Error(`unexpected ${t}`);
  };
  expect('<plist version="1.0">');
  const root = value();
  expect('</plist>');
  if (i !== tokens.length) throw new Error(`trailing ${tokens[i]}`);
  return root;
}

describe('launchd plist for trellisd', () => {
  const plist = parsePlist(readFileSync(FILE, 'utf8')) as Record<string, Plist>;

  it('is a well-formed plist whose label is its file name', () => {
    expect(plist.Label).toBe('net.trellis.trellisd');
    expect(() => parsePlist('<plist version="1.0"><dict><key>A</key></dict></plist>')).toThrow();
  });

  it('runs trellisd as root at boot, kept alive, logging to a file', () => {
    const args = plist.ProgramArguments as string[];
    expect(args[0]).toMatch(/^\/.*\/trellisd$/);
    expect(plist.UserName === undefined || plist.UserName === 'root').toBe(true);
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.KeepAlive).toBe(true);
    expect(plist.StandardOutPath).toMatch(/^\/var\/log\//);
    expect(plist.StandardErrorPath).toBe(plist.StandardOutPath);
    // wireguard-go stops within 5 s of SIGTERM before trellisd exits: launchd must wait longer.
    expect(plist.ExitTimeOut).toBeGreaterThan(5);
    // wireguard-go leaves trellisd's group by itself; what stays in it is cleaned up when trellisd dies.
    expect(plist.AbandonProcessGroup === undefined || plist.AbandonProcessGroup === false).toBe(true);
  });

  it('finds wireguard-go (Homebrew) and the system tools (ifconfig, route, networksetup)', () => {
    const env = plist.EnvironmentVariables as Record<string, string>;
    const path = env.PATH!.split(':');
    expect(path).toEqual(
      expect.arrayContaining(['/opt/homebrew/bin', '/usr/local/bin', '/sbin', '/usr/sbin']),
    );
    expect(env.TRELLIS_UI_TOKEN_FILE).not.toMatch(/^\/run\//);
  });
});
