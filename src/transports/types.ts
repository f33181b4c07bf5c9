import type { ModuleCall } from '../bus/bus';
import type { RegisteredModule } from '../module/registry';

/**
 * How a step travels to its module. `send` returns at once; the result reaches the
 * supervisor's inbox (`src/inbox/`): on this process's bus as `StepCompleted` or `StepFailed`
 * (event and HTTP transports, a `202` as `StepAccepted`), or through the Redis results queue
 * (queue transport, and callbacks in distributed mode).
 */
export interface StepTransport {
  send(call: ModuleCall, module: RegisteredModule): void;
  close?(): Promise<void>;
}
