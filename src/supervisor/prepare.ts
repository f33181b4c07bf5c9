/**
 * What the shell adds to a decision before committing it: the params each new run is logged
 * with, the lease of a run sent now, the key a wait listens for, deferral (a process that
 * does not send), and the admin alert rows an error stop owes. Everything it needs was
 * resolved when the pipeline loaded (`pipeline.delivery`): nothing here asks the dispatcher.
 */
import { loggedParams } from '../dispatcher/params';
import { newId } from '../ids';
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { maskedSecrets, renderValue } from '../templates/render';
import type { Decision } from './decision';

export interface PrepareOptions {
  leaseGraceMs: number;
  queueLeaseMs: number;
  deferDispatch: boolean;
  alertChannels: string[];
}

/** Until when a run sent at `now` is this process's: its step's timeout plus a grace, or the long queue lease. */
export function leaseFor(pipeline: CompiledPipeline, step: CompiledStep | undefined, now: number, o: Pick<PrepareOptions, 'leaseGraceMs' | 'queueLeaseMs'>): number {
  if (!step) return now + o.leaseGraceMs;
  const d = deliveryOf(pipeline, step.id);
  if (d.transport === 'queue') return now + o.queueLeaseMs;
  return now + d.timeoutMs + o.leaseGraceMs;
}

/** Fills in what the pure core leaves to the shell: logged params, leases, wait keys, deferral. */
export function prepareRuns(pipeline: CompiledPipeline, decision: Decision, context: Record<string, unknown>, o: PrepareOptions): void {
  const now = decision.commit.request.updatedAt;
  for (const run of decision.commit.insertRuns) {
    const step = pipeline.steps[run.stepId];
    if (!step) continue;
    run.params = loggedParams(step, context, run.override);
    if (step.kind === 'wait' && step.event && !run.waitKey) {
      try {
        run.waitKey = String(renderValue(step.event.key, context, maskedSecrets)).slice(0, 255);
      } catch {
        run.waitKey = '';
      }
    }
    if (run.status === 'dispatched' && o.deferDispatch) {
      run.status = 'pending';
      run.availableAt = now;
    }
    if (run.status === 'dispatched') run.leaseUntil = leaseFor(pipeline, step, now, o);
  }
  if (o.deferDispatch) {
    decision.schedule.push(...decision.dispatch);
    decision.dispatch.length = 0;
  }
  // Seed 000 §7: the admin is told. The alert is owed from the moment the error_stop is
  // durable, in the same transaction, so no crash can lose it.
  if (decision.finished === 'error_stop' && o.alertChannels.length > 0) {
    decision.commit.alerts = o.alertChannels.map((channel) => ({ id: newId(now), requestId: decision.commit.requestId, pipelineId: pipeline.id, channel, createdAt: now }));
  }
}
