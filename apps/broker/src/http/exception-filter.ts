import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Logger } from 'pino';
import { DomainError } from '../domain/errors';
import type { BrokerMetrics } from '../metrics';
import { writeError } from './error-response';

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
    if (exception instanceof DomainError) {
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
    const line = { method: req.method, url: req.url, status, kind };
    if (status >= 500)
      this.logger.error(
        { ...line, err: exception instanceof Error ? exception.stack : String(exception) },
        message,
      );
    else this.logger.warn(line, message);
    writeError(res, status, message);
  }
}
