import type { Timers } from '../../src/control/timers';

interface Pending {
  id: number;
  fn: () => void;
  ms: number;
  repeat: boolean;
}

/** Timers driven by the test: nothing fires until the test says so. */
export class FakeTimers implements Timers {
  private nextId = 1;
  private clock = 1_000_000;
  readonly pending = new Map<number, Pending>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { id, fn, ms, repeat: false });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { id, fn, ms, repeat: true });
    return id;
  }
  clearInterval(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  now(): number {
    return this.clock;
  }
  advance(ms: number): void {
    this.clock += ms;
  }

  /** One-shot timers waiting now, oldest first. */
  timeouts(): Pending[] {
    return [...this.pending.values()].filter((p) => !p.repeat);
  }

  /** Fires a one-shot timer (advancing the clock by its delay). */
  fire(p: Pending): void {
    this.pending.delete(p.id);
    this.clock += p.ms;
    p.fn();
  }
}
