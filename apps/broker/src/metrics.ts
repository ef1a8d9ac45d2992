import { Counter, Gauge, Registry } from 'prom-client';

/** One registry per broker instance, so several brokers in one process (tests) do not collide. */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly connectedDevices = new Gauge({
    name: 'trellis_connected_devices',
    help: 'Devices with an authenticated control connection to this instance',
    registers: [this.registry],
  });
  readonly controlMessagesIn = new Counter({
    name: 'trellis_control_messages_in_total',
    help: 'Control channel messages received, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly controlMessagesOut = new Counter({
    name: 'trellis_control_messages_out_total',
    help: 'Control channel messages sent, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly enrollments = new Counter({
    name: 'trellis_enrollments_total',
    help: 'Successful device enrollments',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'trellis_errors_total',
    help: 'Rejected requests and messages, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  error(kind: string): void {
    this.errors.inc({ kind });
  }
}
