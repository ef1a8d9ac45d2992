import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { API_PATHS } from '@trellis/proto';
import type { TestBroker } from './fixture';

export interface EventStream {
  status: number;
  events: Array<{ event: string; data: unknown }>;
  ended: Promise<void>;
  close(): void;
}

/** The dashboard's server-sent events read as a browser's EventSource would (one `event:`/`data:` pair per block). */
export function openEventStream(t: TestBroker, headers: Record<string, string>): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(API_PATHS.events, t.broker.url),
      { headers, ca: readFileSync(t.broker.certFile), agent: false },
      (res) => {
        const events: EventStream['events'] = [];
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) });
          }
        });
        const ended = new Promise<void>((r) => res.on('close', () => r()));
        resolve({ status: res.statusCode ?? 0, events, ended, close: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}
