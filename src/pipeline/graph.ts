/**
 * A pipeline as a graph, for people: nodes marked with what they do, and edges that say why
 * they are taken. Pure. `conveyor graph`, the API (`GET /api/pipelines/:id`) and the
 * dashboard all draw this one Mermaid text.
 */
import type { CompiledCondition, CompiledPipeline, CompiledStep } from './types';

/**
 * Why an edge is taken: `next` (no condition entry routed elsewhere: "otherwise"), a condition
 * path (`condition[0].success[1]`), `action:<code>`, `onError`, `onTimeout`, `loop` (back to
 * the loop's target) or `onExhausted`.
 */
export type EdgeVia = 'next' | 'onError' | 'onTimeout' | 'loop' | 'onExhausted' | `action:${string}` | `condition${string}`;

export interface GraphEdge {
  from: string;
  to: string;
  via: EdgeVia;
  /** The short text on the edge: the condition, `otherwise`, `action approve`, `error`, … */
  label?: string;
}

export interface GraphNode {
  id: string;
  kind: CompiledStep['kind'];
  subsystem?: string;
  description?: string;
  /** `'all'`: a join, that waits until every step in its `prev` has arrived. */
  join?: 'all';
  /** What the node does, in a few words: the module, `wait: event sale`, `action: approve, reject`, `join: all`, … */
  mark: string;
}

export interface PipelineGraph {
  start: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

const duration = (ms: number): string =>
  ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;

/** `payload.email not empty`, `check.total gt 100`, `a.b eq field c.d`. */
export function conditionText(c: CompiledCondition): string {
  const against = c.valueField ? ` field ${c.valueField.join('.')}` : c.value === undefined ? '' : ` ${JSON.stringify(c.value)}`;
  return `${c.field.join('.')} ${c.negate ? 'not ' : ''}${c.operation}${against}`;
}

function conditionEdges(from: string, list: CompiledCondition[], at: `condition${string}`, labels: string[], out: GraphEdge[]): void {
  list.forEach((c, i) => {
    const here = `${at}[${i}]` as const;
    const label = [...labels, conditionText(c)];
    for (const to of c.result ?? []) out.push({ from, to, via: here, label: label.join(' and ') });
    if (c.success) conditionEdges(from, c.success, `${here}.success`, label, out);
  });
}

/** What a step does, in a few words. */
function markOf(s: CompiledStep): string {
  const parts: string[] = [];
  switch (s.kind) {
    case 'module':
      parts.push(s.subsystem);
      break;
    case 'wait':
      parts.push(`wait: ${[s.event && `event ${s.event.name}`, s.poll && `poll ${s.poll.subsystem} every ${duration(s.poll.everyMs)}`].filter(Boolean).join(' or ')}`);
      break;
    case 'action':
      parts.push(`action: ${Object.keys(s.actions).join(', ')}`);
      break;
    case 'delay':
      parts.push(`delay ${duration(s.durationMs)}`);
      break;
    case 'loop':
      parts.push(`loop to ${s.target}, at most ${s.max}`);
      break;
    case 'stop':
      parts.push(`stop: ${s.status}`);
      break;
    case 'publish':
      parts.push(s.amqp ? `publish: amqp ${s.amqp.exchange} ${s.amqp.routingKey}`.trimEnd() : `publish: nats ${s.nats?.subject ?? ''}`);
      break;
    default:
      parts.push(s.kind);
  }
  if ((s.kind === 'wait' || s.kind === 'action') && s.timeoutMs !== undefined) parts.push(`timeout ${duration(s.timeoutMs)}`);
  if (s.join === 'all') parts.push('join: all');
  return parts.join(' · ');
}

/** The edges out of one step, each with the reason it is taken. */
function stepEdges(s: CompiledStep, edges: GraphEdge[]): void {
  const from = s.id;
  const before = edges.length;
  conditionEdges(from, s.condition ?? [], 'condition', [], edges);
  if (s.kind === 'action') {
    for (const a of Object.values(s.actions)) for (const to of a.result ?? []) edges.push({ from, to, via: `action:${a.code}`, label: `action ${a.code}` });
  }
  // `next` is the route when nothing above routed elsewhere: "otherwise", when there is an above.
  const otherwise = edges.length > before || (s.kind === 'action' && s.when.length > 0);
  for (const to of s.next) edges.push(otherwise ? { from, to, via: 'next', label: 'otherwise' } : { from, to, via: 'next' });
  if (s.kind === 'module' || s.kind === 'publish') for (const to of s.onError) edges.push({ from, to, via: 'onError', label: 'error' });
  if (s.kind === 'wait' || s.kind === 'action') for (const to of s.onTimeout) edges.push({ from, to, via: 'onTimeout', label: 'timeout' });
  if (s.kind === 'loop') {
    edges.push({ from, to: s.target, via: 'loop', label: `again, at most ${s.max}` });
    for (const to of s.onExhausted) edges.push({ from, to, via: 'onExhausted', label: `after ${s.max}` });
  }
}

export function pipelineGraph(p: CompiledPipeline): PipelineGraph {
  const edges: GraphEdge[] = [];
  const nodes = Object.values(p.steps).map((s): GraphNode => {
    stepEdges(s, edges);
    return {
      id: s.id, kind: s.kind, subsystem: s.kind === 'module' ? s.subsystem : undefined, description: s.description,
      join: s.join === 'all' ? 'all' : undefined, mark: markOf(s),
    };
  });
  return { start: p.start, nodes, edges };
}

/** A step id as a Mermaid node id: prefixed, so that no step id is a Mermaid keyword (`end`). */
export const mermaidId = (s: string): string => `n_${s.replace(/[^A-Za-z0-9_]/g, '_')}`;

/**
 * Text inside a quoted Mermaid label. A `"` would end the label, and mermaid 11 shows its
 * entity (`#quot;`) as `&quot;` in SVG text: it is drawn as `'`. `<` and `>` are entity
 * codes, so that a value never reads as markup; those mermaid draws as the characters.
 */
const esc = (s: string): string => s.replace(/["<>]/g, (c) => ({ '"': "'", '<': '#lt;', '>': '#gt;' })[c]!);

/** The node shape of each kind: people (action) and waits stand out from the work. */
const SHAPES: Record<GraphNode['kind'], [string, string]> = {
  module: ['[', ']'],
  setData: ['[/', '/]'],
  wait: ['{{', '}}'],
  action: ['[/', '\\]'],
  delay: ['{{', '}}'],
  loop: ['[[', ']]'],
  stop: ['([', '])'],
  publish: ['>', ']'],
};

/**
 * Mermaid flowchart text of the graph. The first link is `start` to the first step; then one
 * link per edge of {@link pipelineGraph}, in its order (the dashboard styles links by index).
 * Error and timeout routes are dashed; a join has a thick border (class `join`).
 */
export function graphMermaid(g: PipelineGraph): string {
  const lines = ['flowchart TD', `  start((start)) --> ${mermaidId(g.start)}`];
  for (const n of g.nodes) {
    const [open, close] = SHAPES[n.kind];
    lines.push(`  ${mermaidId(n.id)}${open}"${esc(n.id)}<br/><small>${esc(n.mark)}</small>"${close}`);
  }
  for (const e of g.edges) {
    const arrow = e.via === 'onError' || e.via === 'onTimeout' ? '-.->' : '-->';
    lines.push(`  ${mermaidId(e.from)} ${arrow}${e.label ? `|"${esc(e.label)}"|` : ''} ${mermaidId(e.to)}`);
  }
  const joins = g.nodes.filter((n) => n.join === 'all');
  if (joins.length > 0) lines.push('  classDef join stroke-width:4px', `  class ${joins.map((n) => mermaidId(n.id)).join(',')} join`);
  return lines.join('\n');
}

/** The graph with its Mermaid text, as the API serves it (the dashboard draws `mermaid`). */
export function pipelineGraphWithMermaid(p: CompiledPipeline): PipelineGraph & { mermaid: string } {
  const g = pipelineGraph(p);
  return { ...g, mermaid: graphMermaid(g) };
}

/** Mermaid flowchart text: `conveyor graph <pipeline>` prints it. */
export function toMermaid(p: CompiledPipeline): string {
  return graphMermaid(pipelineGraph(p));
}
