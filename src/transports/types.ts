import type { ModuleCall } from '../bus/bus';
import type { RegisteredModule } from '../module/registry';

/**
 * How a step travels to its module. `send` returns at once; the result comes back on the bus
 * as `StepCompleted` or `StepFailed`, whichever way the module answered.
 */
export interface StepTransport {
  send(call: ModuleCall, module: RegisteredModule): void;
  close?(): Promise<void>;
}
