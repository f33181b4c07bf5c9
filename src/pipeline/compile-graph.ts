/**
 * Whole-graph checks of a pipeline, run once every step has been read: `prev` agrees with the
 * routes, every step is reachable from `start`, and a loop is bounded.
 */
import { report, type IssueSink } from './compile-values';

/** What the graph checks need to know of one step. Only known step ids appear in it. */
export interface StepEdges {
  /** Every step this one may route to: `next`, any condition `result` at any depth, `onError`. */
  targets: ReadonlySet<string>;
  /** The declared `prev` entries that name known steps, with their index; undefined when no `prev`. */
  prev?: readonly { id: string; index: number }[];
}

export type PipelineGraph = ReadonlyMap<string, StepEdges>;

/** Who routes to whom, reversed: step id → the steps that may lead to it. */
function incomingEdges(graph: PipelineGraph): Map<string, Set<string>> {
  const incoming = new Map<string, Set<string>>();
  for (const id of graph.keys()) incoming.set(id, new Set());
  for (const [from, { targets }] of graph) {
    for (const to of targets) incoming.get(to)?.add(from);
  }
  return incoming;
}

/**
 * A step that declares `prev` must list every step that routes to it, and every step it
 * lists must route to it. A step without `prev` accepts any predecessor (seed 002 made `prev`
 * optional); `start` is entered by the intake, which needs no listing.
 */
export function checkPrev(sink: IssueSink, graph: PipelineGraph): void {
  const incoming = incomingEdges(graph);
  for (const [id, { prev }] of graph) {
    if (!prev) continue;
    const listed = new Set(prev.map((p) => p.id));
    const from = incoming.get(id) ?? new Set<string>();
    for (const source of from) {
      if (!listed.has(source)) report(sink, `steps.${id}.prev`, `"${source}" routes to "${id}" but is not listed in prev`);
    }
    for (const { id: listedId, index } of prev) {
      if (!from.has(listedId)) report(sink, `steps.${id}.prev[${index}]`, `"${listedId}" is listed in prev but never routes to "${id}"`);
    }
  }
}

/** Reports every step that no route leads to from `start`. */
export function checkReachable(sink: IssueSink, graph: PipelineGraph, start: string): void {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const id = queue.shift() as string;
    for (const to of graph.get(id)?.targets ?? []) {
      if (!seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
    }
  }
  for (const id of graph.keys()) {
    if (!seen.has(id)) report(sink, `steps.${id}`, `unreachable from start "${start}"`);
  }
}

/**
 * One cycle of the graph as a closed walk (`['a', 'b', 'a']`), or `undefined` when the graph
 * is acyclic. Iterative depth-first search, so a long chain cannot overflow the stack.
 */
export function findCycle(graph: PipelineGraph): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  for (const root of graph.keys()) {
    if (state.has(root)) continue;
    const path: string[] = [root];
    const iterators = [(graph.get(root)?.targets ?? new Set<string>()).values()];
    state.set(root, 'open');
    while (path.length > 0) {
      const step = iterators[iterators.length - 1].next();
      if (step.done) {
        state.set(path.pop() as string, 'done');
        iterators.pop();
        continue;
      }
      const to = step.value;
      if (state.get(to) === 'open') return [...path.slice(path.indexOf(to)), to];
      if (state.has(to)) continue;
      state.set(to, 'open');
      path.push(to);
      iterators.push((graph.get(to)?.targets ?? new Set<string>()).values());
    }
  }
  return undefined;
}
