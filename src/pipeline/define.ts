import type { PipelineDef } from './types';

/**
 * Declares a pipeline. It returns its argument unchanged: it exists so that the compiler
 * infers the step names from `steps` and rejects any route (`start`, `next`, `prev`,
 * `result`, `onError`) that names a step which does not exist.
 *
 * @example
 * export default definePipeline({
 *   id: 'hello',
 *   start: 'greet',
 *   steps: { greet: { subsystem: 'greeter' } },
 * });
 */
export function definePipeline<const S extends string>(def: PipelineDef<S>): PipelineDef<S> {
  return def;
}
