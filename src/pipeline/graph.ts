/** A pipeline as a graph: nodes and labelled edges, and its Mermaid text. Pure. */
import type { CompiledCondition, CompiledPipeline } from './types';

export interface GraphEdge {
  from: string;
  to: string;
  /** `next`, `onError`, or the condition path that leads there: `condition[0].success[0]`. */
  via: string;
  label?: string;
}

export interface PipelineGraph {
  start: string;
  nodes: Array<{ id: string; kind: string; subsystem?: string; description?: string }>;
  edges: GraphEdge[];
}

function conditionEdges(from: string, list: CompiledCondition[], at: string, labels: string[], out: GraphEdge[]): void {
  list.forEach((c, i) => {
    const here = `${at}[${i}]`;
    const label = [...labels, `${c.field.join('.')} ${c.negate ? '!|' : ''}${c.operation}${c.value === undefined ? '' : ` ${JSON.stringify(c.value)}`}`];
    for (const to of c.result ?? []) out.push({ from, to, via: here, label: label.join(' & ') });
    if (c.success) conditionEdges(from, c.success, `${here}.success`, label, out);
  });
}

export function pipelineGraph(p: CompiledPipeline): PipelineGraph {
  const edges: GraphEdge[] = [];
  const nodes = Object.values(p.steps).map((s) => {
    conditionEdges(s.id, s.condition, 'condition', [], edges);
    for (const to of s.next) edges.push({ from: s.id, to, via: 'next' });
    if (s.kind === 'module') for (const to of s.onError) edges.push({ from: s.id, to, via: 'onError', label: 'error' });
    return { id: s.id, kind: s.kind, subsystem: s.kind === 'module' ? s.subsystem : undefined, description: s.description };
  });
  return { start: p.start, nodes, edges };
}

/** Mermaid flowchart text: `conveyor graph <pipeline>` prints it. */
export function toMermaid(p: CompiledPipeline): string {
  const g = pipelineGraph(p);
  const id = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_');
  const esc = (s: string): string => s.replace(/"/g, '#quot;');
  const lines = ['flowchart TD', `  __start((start)) --> ${id(g.start)}`];
  for (const n of g.nodes) {
    const text = n.subsystem ? `${n.id}<br/><small>${n.subsystem}</small>` : `${n.id}<br/><small>${n.kind}</small>`;
    lines.push(n.kind === 'stop' ? `  ${id(n.id)}(["${esc(text)}"])` : `  ${id(n.id)}["${esc(text)}"]`);
  }
  for (const e of g.edges) {
    const arrow = e.via === 'onError' ? '-.->' : '-->';
    lines.push(e.label ? `  ${id(e.from)} ${arrow}|"${esc(e.label)}"| ${id(e.to)}` : `  ${id(e.from)} ${arrow} ${id(e.to)}`);
  }
  return lines.join('\n');
}
