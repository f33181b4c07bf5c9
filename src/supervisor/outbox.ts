/**
 * The supervisor's one way out, taken only once a decision is committed: every run it starts,
 * and every run a timer or a redelivery sends again, leaves through `send`. Module and
 * `publish` steps go to the dispatcher with the transport resolved at load; the steps the
 * engine does itself (`engine-steps.ts`) are worked out here, and their result is handed
 * back to the supervisor on a later turn, as a module's answer would come. It also keeps
 * which runs are with a module in this process.
 */
import type { Bus } from '../bus/bus';
import type { Dispatcher } from '../dispatcher/dispatcher';
import { logsAt, type Logger } from '../log/logger';
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline } from '../pipeline/types';
import { idempotencyKeyOf, type OpenRun, type RequestState } from './decision';
import { ENGINE_STEP_KINDS, runEngineStep } from './engine-steps';
import type { StepResult } from './messages';
import { traced } from './traces';

export type RunRef = Pick<OpenRun, 'id' | 'stepId' | 'attempt' | 'causedBy' | 'override'>;

export class Outbox {
  /** Runs sent to a module and not yet answered, in this process. */
  readonly inFlight = new Set<string>();

  constructor(
    private readonly d: { dispatcher: Dispatcher; logger: Logger; bus: Bus },
    /** Where an engine step's result goes: back into the supervisor. */
    private readonly takeBack: (result: StepResult) => void,
  ) {}

  send(pipeline: CompiledPipeline, state: RequestState, run: RunRef): void {
    const step = pipeline.steps[run.stepId];
    if (!step) return;
    const transport = deliveryOf(pipeline, step.id).transport;
    // Only work done by this process counts as in flight here: a queue run's result may be
    // taken by any engine, so this one might never hear of it and would then refuse to
    // redeliver the run after its lease ran out.
    if (transport !== 'queue') this.inFlight.add(run.id);
    // A line per step: its fields are built only when `info` is written.
    if (logsAt(this.d.logger, 'info')) {
      this.d.logger.info('step dispatched', {
        requestId: state.request.id, pipeline: pipeline.id, stepId: run.stepId, runId: run.id, attempt: run.attempt,
        module: step.kind === 'module' ? step.subsystem : null, transport, ...traced(state, run.id),
      });
    }
    const context = { ...state.context };
    if (ENGINE_STEP_KINDS.has(step.kind)) {
      return runEngineStep({ requestId: state.request.id, step, runId: run.id, attempt: run.attempt, context }, this.d.logger, (r) => {
        this.d.bus.emit('StepAnswered', r);
        this.takeBack(r);
      });
    }
    this.d.dispatcher.dispatch({
      pipeline, request: state.request, step, runId: run.id, attempt: run.attempt,
      idempotencyKey: idempotencyKeyOf(run), context, override: run.override,
    });
  }
}
