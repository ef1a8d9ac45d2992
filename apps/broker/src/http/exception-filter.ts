import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import { API_PATHS } from '@trellis/proto';
import type { Logger } from 'pino';
import { DomainError } from '../domain/errors';
import type { BrokerMetrics } from '../metrics';
import { PolicyRejectedError } from '../policy/policy.service';
import { errorBody, writeError } from './error-response';

/** An invalid policy: the ErrorBody plus every located error (proto's PolicyRejection). */
function writeRejection(res: ServerResponse, e: PolicyRejectedError): void {
  if (res.headersSent) return;
  const body = JSON.stringify({
    ...errorBody(e.status, e.message),
    error: 'invalid_policy',
    errors: e.errors,
  });
  res.statusCode = e.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** A request's path as the log may show it: a sign-in's user code in it is a live secret. */
export function loggableUrl(url: string): string {
  const prefix = `${API_PATHS.deviceAuthRequests}/`;
  if (url.startsWith(prefix)) return `${prefix}[redacted]`;
  // An OIDC callback's query carries the authorization code and the state: neither is logged.
  const [path, query] = url.split('?', 2);
  if (path === API_PATHS.oidcCallback && query !== undefined) return `${path}?[redacted]`;
  return url;
}

/** Every error leaves as a JSON ErrorBody with a log line and a metrics count. */
@Catch()
export class JsonExceptionFilter implements ExceptionFilter {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: BrokerMetrics,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<IncomingMessage>();
    const res = http.getResponse<ServerResponse>();
    let status = 500;
    let kind = 'internal';
    let message = 'internal error';
    let code: string | undefined;
    if (exception instanceof DomainError) {
      code = exception.kind;
      status = exception.status;
      kind = exception.kind;
      message = exception.message;
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      kind = status === 404 ? 'not_found' : `http_${status}`;
      const body = exception.getResponse();
      const m = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : body;
      message = Array.isArray(m) ? m.join('; ') : String(m ?? exception.message);
    }
    this.metrics.error(kind);
    const url = loggableUrl(req.url ?? '');
    // The router's 404 quotes the whole URL ("Cannot POST /…"): quoted as the log may show it.
    if (req.url && url !== req.url) message = message.split(req.url).join(url);
    const line = { method: req.method, url, status, kind };
    if (status >= 500)
      this.logger.error(
        { ...line, err: exception instanceof Error ? exception.stack : String(exception) },
        message,
      );
    else if (exception instanceof DomainError && exception.logLevel === 'debug')
      this.logger.debug(line, message);
    else this.logger.warn(line, message);
    if (exception instanceof PolicyRejectedError) writeRejection(res, exception);
    else writeError(res, status, message, false, code);
  }
}
