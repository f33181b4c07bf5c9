/** The decision env of each pipeline, for the supervisor's shell. */
import { newId } from '../ids';
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline } from '../pipeline/types';
import type { DecisionEnv } from './decision';
import type { PipelineSource } from './options';

export class DecisionEnvs {
  private readonly envs = new WeakMap<CompiledPipeline, DecisionEnv>();

  constructor(private readonly pipelines: Pick<PipelineSource, 'retryPolicy'>) {}

  /**
   * The decision env of a pipeline, made once and re-stamped with the time: building five
   * closures per step was measurable. `decide` is synchronous and keeps no reference to it.
   */
  of(pipeline: CompiledPipeline): DecisionEnv {
    let env = this.envs.get(pipeline);
    if (!env) {
      env = {
        now: 0,
        newId: () => newId(),
        random: Math.random,
        retryPolicy: (step) => this.pipelines.retryPolicy(pipeline, step),
        transportOf: (step) => deliveryOf(pipeline, step.id).transport,
      };
      this.envs.set(pipeline, env);
    }
    env.now = Date.now();
    return env;
  }
}
