/**
 * The pipeline graph for people (src/pipeline/graph.ts): every route of every step kind is an
 * edge that says why it is taken, and joins, waits, actions, delays and loops are marked.
 */
import { expect } from 'chai';
import { formatIssue } from '../../src/errors';
import { compilePipeline } from '../../src/pipeline/compile';
import { conditionText, graphMermaid, mermaidId, pipelineGraph, pipelineGraphWithMermaid, toMermaid } from '../../src/pipeline/graph';
import type { CompiledPipeline } from '../../src/pipeline/types';

/** One pipeline with a step of every kind and every kind of route. */
function everyRoute(): CompiledPipeline {
  const def = {
    id: 'every-route',
    start: 'check',
    steps: {
      check: {
        subsystem: 'm',
        condition: [
          { field: 'check.total', operation: 'gt', value: 100, success: [{ field: 'payload.vip', operation: '!|empty', result: ['approve'] }] },
          { field: 'check.kind', operation: 'eq', valueField: 'payload.kind', result: ['pause'] },
          { field: 'check.skip', operation: 'eq', value: true, result: [] },
        ],
        next: ['left', 'right'],
        onError: ['failed'],
      },
      left: { subsystem: 'm', next: ['both'] },
      right: { kind: 'setData', data: { a: 1 }, next: ['both'] },
      both: { subsystem: 'm', prev: ['left', 'right'], join: 'all', next: ['sale'] },
      approve: {
        kind: 'action',
        actions: { ok: { allow: ['boss'], result: ['sale'] }, no: { allow: ['boss'], result: ['failed'] }, note: { allow: ['boss'] } },
        next: ['sale'],
        timeout: '2d',
        onTimeout: ['failed'],
      },
      pause: { kind: 'delay', duration: '1500ms', next: ['sale'] },
      sale: { kind: 'wait', event: { name: 'sale', key: '{{ payload.id }}' }, timeout: '14d', onTimeout: ['again'], next: ['done'] },
      again: { kind: 'loop', target: 'check', max: 3, onExhausted: ['failed'] },
      done: { kind: 'stop', status: 'completed' },
      failed: { kind: 'stop', status: 'stopped', reason: 'no' },
    },
  };
  const { pipeline, issues } = compilePipeline(def, { source: 'test', modules: new Set(['m']) });
  expect(issues.map(formatIssue)).to.deep.equal([]);
  return pipeline!;
}

describe('pipeline graph', () => {
  const p = everyRoute();
  const g = pipelineGraph(p);
  const edge = (from: string, to: string) => g.edges.filter((e) => e.from === from && e.to === to).map((e) => ({ via: e.via, label: e.label }));

  it('labels a condition route with its condition, nested conditions joined with "and"', () => {
    expect(edge('check', 'approve')).to.deep.equal([{ via: 'condition[0].success[0]', label: 'check.total gt 100 and payload.vip not empty' }]);
    expect(edge('check', 'pause')).to.deep.equal([{ via: 'condition[1]', label: 'check.kind eq field payload.kind' }]);
    expect(conditionText({ field: ['a', 'b'], negate: false, operation: 'in', value: ['x', 'y'] })).to.equal('a.b in ["x","y"]');
  });

  it('labels next "otherwise" beside conditions or actions, and leaves a lone next unlabelled', () => {
    expect(edge('check', 'left')).to.deep.equal([{ via: 'next', label: 'otherwise' }]);
    expect(edge('check', 'right')).to.deep.equal([{ via: 'next', label: 'otherwise' }]);
    expect(edge('left', 'both')).to.deep.equal([{ via: 'next', label: undefined }]);
    expect(edge('approve', 'sale')).to.deep.equal([{ via: 'action:ok', label: 'action ok' }, { via: 'next', label: 'otherwise' }]);
  });

  it('draws the routes of errors, actions, timeouts and loops', () => {
    expect(edge('check', 'failed')).to.deep.equal([{ via: 'onError', label: 'error' }]);
    expect(edge('approve', 'failed')).to.deep.equal([{ via: 'action:no', label: 'action no' }, { via: 'onTimeout', label: 'timeout' }]);
    expect(edge('sale', 'again')).to.deep.equal([{ via: 'onTimeout', label: 'timeout' }]);
    expect(edge('sale', 'done')).to.deep.equal([{ via: 'next', label: undefined }]);
    expect(edge('again', 'check')).to.deep.equal([{ via: 'loop', label: 'again, at most 3' }]);
    expect(edge('again', 'failed')).to.deep.equal([{ via: 'onExhausted', label: 'after 3' }]);
  });

  it('has an edge for every route the compiler knows, and no other', () => {
    // The compiler's own route check (prev, reachability) sees the same targets.
    const fromGraph = new Set(g.edges.map((e) => `${e.from}>${e.to}`));
    const expected = ['check>approve', 'check>pause', 'check>left', 'check>right', 'check>failed', 'left>both', 'right>both', 'both>sale',
      'approve>sale', 'approve>failed', 'pause>sale', 'sale>again', 'sale>done', 'again>check', 'again>failed'];
    expect([...fromGraph].sort()).to.deep.equal(expected.sort());
  });

  it('marks each node with what it does: the module, join, wait, action, delay, loop, stop', () => {
    const mark = (id: string) => g.nodes.find((n) => n.id === id)!;
    expect(mark('check')).to.deep.include({ kind: 'module', subsystem: 'm', mark: 'm' });
    expect(mark('both')).to.deep.include({ join: 'all', mark: 'm · join: all' });
    expect(mark('left').join).to.equal(undefined);
    expect(mark('approve').mark).to.equal('action: ok, no, note · timeout 2d');
    expect(mark('sale').mark).to.equal('wait: event sale · timeout 14d');
    expect(mark('pause').mark).to.equal('delay 1500ms');
    expect(mark('again').mark).to.equal('loop to check, at most 3');
    expect(mark('failed').mark).to.equal('stop: stopped');
  });

  it('writes Mermaid with a shape per kind, dashed error and timeout routes, thick joins, escaped labels', () => {
    const text = toMermaid(p);
    const lines = text.split('\n');
    expect(lines[0]).to.equal('flowchart TD');
    expect(lines[1]).to.equal('  start((start)) --> n_check');
    expect(lines).to.include('  n_check["check<br/><small>m</small>"]');
    expect(lines).to.include('  n_approve[/"approve<br/><small>action: ok, no, note · timeout 2d</small>"\\]');
    expect(lines).to.include('  n_sale{{"sale<br/><small>wait: event sale · timeout 14d</small>"}}');
    expect(lines).to.include('  n_again[["again<br/><small>loop to check, at most 3</small>"]]');
    expect(lines).to.include('  n_done(["done<br/><small>stop: completed</small>"])');
    expect(lines).to.include('  n_check -.->|"error"| n_failed');
    expect(lines).to.include('  n_sale -.->|"timeout"| n_again');
    expect(lines).to.include('  n_check -->|"otherwise"| n_left');
    expect(lines).to.include('  class n_both join');
    // Links: the start link, then one per edge in order (the dashboard styles them by index).
    expect(lines.filter((l) => / (-->|-\.->)/.test(l))).to.have.length(g.edges.length + 1);
    // A quote in a value would end the label: it is drawn as '; < and > are entity codes.
    const odd = graphMermaid({
      start: 'a',
      nodes: [{ id: 'a', kind: 'module', subsystem: 'm', mark: 'm' }, { id: 'end', kind: 'stop', mark: 'stop: completed' }],
      edges: [{ from: 'a', to: 'end', via: 'condition[0]', label: 'a eq "x<#>"' }],
    });
    expect(odd.split('\n')).to.include('  n_a -->|"a eq \'x#lt;##gt;\'"| n_end');
    // A step may be called `end`, a Mermaid keyword: every node id is prefixed.
    expect(mermaidId('end')).to.equal('n_end');
  });

  it('marks a publish step with its broker and target, draws it as a flag, and routes its onError', () => {
    const { pipeline, issues } = compilePipeline({
      id: 'pub', start: 'send',
      steps: {
        send: { kind: 'publish', amqp: { exchange: 'erp', routingKey: 'order.created' }, body: '{{ payload }}', next: ['tell'], onError: ['failed'] },
        tell: { kind: 'publish', nats: { subject: 'orders.sent' }, body: { id: '{{ payload.id }}' } },
        failed: { kind: 'stop', status: 'stopped', reason: 'not sent' },
      },
    }, { source: 'test', modules: new Set() });
    expect(issues.map(formatIssue)).to.deep.equal([]);
    const pg = pipelineGraph(pipeline!);
    expect(pg.nodes.find((n) => n.id === 'send')).to.deep.include({ kind: 'publish', mark: 'publish: amqp erp order.created' });
    expect(pg.nodes.find((n) => n.id === 'tell')!.mark).to.equal('publish: nats orders.sent');
    const lines = toMermaid(pipeline!).split('\n');
    expect(lines).to.include('  n_send>"send<br/><small>publish: amqp erp order.created</small>"]');
    expect(lines).to.include('  n_send -.->|"error"| n_failed');
  });

  it('serves the same Mermaid text in the API graph', () => {
    const served = pipelineGraphWithMermaid(p);
    expect(served.mermaid).to.equal(toMermaid(p));
    expect(served.edges).to.deep.equal(g.edges);
  });
});
