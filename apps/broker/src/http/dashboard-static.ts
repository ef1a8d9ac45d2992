import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import serveStatic from 'serve-static';

/**
 * The dashboard's pages may load only their own scripts, styles and images, talk only to this
 * broker, and never be framed: a strict Content-Security-Policy and its companions.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Paths that are never the dashboard's. */
const NOT_DASHBOARD = /^\/(api|metrics|healthz)(\/|$)/;

type Next = (err?: unknown) => void;

/**
 * Serves the built dashboard (`dir`, with its index.html) on the broker's HTTPS port: its files
 * as they are (hashed assets cached for good), and index.html for any other page path (/device,
 * /devices), which the app routes itself. Without a built dashboard it passes everything on.
 */
export function dashboardStatic(
  dir: string | null,
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const index = dir && join(dir, 'index.html');
  if (!dir || !index || !existsSync(index)) return (_req, _res, next) => next();
  const files = serveStatic(dir, {
    index: false,
    fallthrough: true,
    setHeaders: (res, path) => {
      for (const [k, v] of Object.entries(DASHBOARD_HEADERS)) res.setHeader(k, v);
      const hashed = path.startsWith(join(dir, 'assets'));
      res.setHeader('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  return (req, res, next) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || NOT_DASHBOARD.test(path)) return next();
    files(req, res, () => {
      // A page of the app (no file extension): the app itself, which shows that page.
      if (extname(path) !== '') return next();
      const original = req.url;
      req.url = '/index.html';
      files(req, res, (err?: unknown) => {
        req.url = original;
        next(err);
      });
    });
  };
}

/** The dashboard built next to this broker in the repository (apps/dashboard/dist), if it is there. */
export function defaultDashboardDir(): string | null {
  const dir = join(__dirname, '..', '..', '..', 'dashboard', 'dist');
  return existsSync(join(dir, 'index.html')) ? dir : null;
}
