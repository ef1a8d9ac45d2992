import type { WgConfigUpdate, WgDeviceState } from './types';

export type WireGuardMode = 'auto' | 'kernel' | 'userspace';

/**
 * One WireGuard implementation: creates and removes the interface and reads/writes its
 * configuration. Network addresses and routes are the NetworkConfigurator's job, not this one's.
 */
export interface WireGuardBackend {
  readonly kind: 'kernel' | 'userspace' | 'wireguard-nt';
  readonly interfaceName: string;
  /** Removes a stale interface left by a crash, then creates a fresh one. */
  start(): Promise<void>;
  getState(): Promise<WgDeviceState>;
  apply(update: WgConfigUpdate): Promise<void>;
  /** Removes the interface (and with it its routes). Safe to call twice. */
  stop(): Promise<void>;
  /** Called when the interface had to be re-created (a supervised process died); config is gone. */
  onRecreated(listener: () => void): void;
}
