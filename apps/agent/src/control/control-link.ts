import type { ControlSocket } from './control-socket';

/** Where the control client stands: nothing, resolving the brokers' names, or a connection to one. */
export type ControlLink =
  | { phase: 'idle' }
  | { phase: 'resolving' }
  | {
      phase: 'connecting' | 'await-challenge' | 'await-netmap' | 'ready';
      socket: ControlSocket;
      /** What this broker's challenge said it takes (ChallengeMessage.features); empty before it. */
      features: ReadonlySet<string>;
    };
