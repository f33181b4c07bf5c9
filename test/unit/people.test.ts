/** The pure people rules (src/access/people.ts) and their compile step, table by table. */
import { expect } from 'chai';
import { allowsAction, effectiveRoles, idsAt, maskPaths, maskValues, participantsOf, redactedValues } from '../../src/access/people';
import { parseApiKeys } from '../../src/api/auth';
import { looksLikeJwt } from '../../src/api/tokens';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledAction, CompiledPipeline } from '../../src/pipeline/types';

function compile(extra: Record<string, unknown>): { pipeline?: CompiledPipeline; issues: string[] } {
  const r = compilePipeline({ id: 'p', start: 'a', steps: { a: { kind: 'setData', data: {} } }, ...extra }, { source: 'pipelines/p', modules: new Set() });
  return { pipeline: r.pipeline, issues: r.issues.map((i) => `${i.path}: ${i.message}`) };
}

describe('people: participants, roles and redaction (pure)', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['an id', 'u1', ['u1']],
    ['a number id', 42, ['42']],
    ['an object with an id', { id: 'u2', title: 'x' }, ['u2']],
    ['a list of both', ['u1', { id: 'u3' }, null, { title: 'no id' }, ''], ['u1', 'u3']],
    ['nothing', undefined, []],
    ['an id that is too long', 'x'.repeat(101), []],
  ];
  for (const [what, value, ids] of cases) it(`reads actor ids from ${what}`, () => expect(idsAt(value)).to.deep.equal(ids));

  const { pipeline } = compile({
    participants: { customer: 'payload.customer.id', executor: 'vars.executor', moderator: 'payload.moderators' },
    redact: [{ path: 'payload.customer.phone', from: ['executor', 'support'], except: ['moderator'], when: [{ field: 'vars.hidden', operation: 'eq', value: true }] }],
  });
  const context = { payload: { customer: { id: 'c1', phone: '+7 900 123-45-67' }, moderators: [{ id: 'm1' }, { id: 'm2' }] }, vars: { executor: 'e1', hidden: true }, a: { note: 'call +7 900 123-45-67' } };

  it('lists the participants now, sorted, each once', () => {
    expect(participantsOf(pipeline!, context)).to.deep.equal([
      { role: 'customer', actorId: 'c1' }, { role: 'executor', actorId: 'e1' }, { role: 'moderator', actorId: 'm1' }, { role: 'moderator', actorId: 'm2' },
    ]);
  });

  it('never takes a participant role from a key or token, and adds the ones held here', () => {
    expect([...effectiveRoles(pipeline!, context, 'e1', new Set(['customer', 'read']))].sort()).to.deep.equal(['executor', 'read']);
    expect([...effectiveRoles(pipeline!, context, 'x', new Set(['executor', 'moderator']))]).to.deep.equal([]);
    expect([...effectiveRoles(pipeline!, { ...context, vars: { executor: 'e2' } }, 'e1', new Set())]).to.deep.equal([]);
  });

  it('lets admin take global-role actions but never a participant\'s', () => {
    const action = (allow: string[]): CompiledAction => ({ code: 'x', allow, visible: [], fields: {} });
    const declared = new Set(['customer', 'executor']);
    expect(allowsAction(action(['customer']), new Set(['admin']), declared)).to.equal(false);
    expect(allowsAction(action(['listing-admin']), new Set(['admin']), declared)).to.equal(true);
    expect(allowsAction(action(['customer', 'support']), new Set(['admin']), declared)).to.equal(true);
    expect(allowsAction(action(['customer']), new Set(['customer']), declared)).to.equal(true);
  });

  it('redacts for the roles named, unless excepted, while the condition holds', () => {
    const forExecutor = redactedValues(pipeline!, context, new Set(['executor']));
    expect(forExecutor.paths).to.deep.equal([['payload', 'customer', 'phone']]);
    expect(redactedValues(pipeline!, context, new Set(['executor', 'moderator'])).paths).to.deep.equal([]);
    expect(redactedValues(pipeline!, context, new Set(['customer'])).paths).to.deep.equal([]);
    expect(redactedValues(pipeline!, { ...context, vars: { executor: 'e1', hidden: false } }, new Set(['executor'])).paths).to.deep.equal([]);
    const masked = maskValues(maskPaths(context, forExecutor.paths), forExecutor.values);
    expect(masked.payload).to.deep.equal({ customer: { id: 'c1', phone: '[REDACTED]' }, moderators: [{ id: 'm1' }, { id: 'm2' }] });
    expect(masked.a).to.deep.equal({ note: 'call [REDACTED]' });
    expect(context.payload.customer.phone, 'a copy: the context is not changed').to.equal('+7 900 123-45-67');
  });

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    ['a path outside the context', { participants: { customer: 'body.id' } }, 'participants.customer: must start with payload., vars., request. or a step id (got "body.id")'],
    ['a global role as a participant role', { participants: { admin: 'payload.a' } }, 'participants.admin: "admin" is a global role and cannot be a participant role'],
    ['a bad role name', { participants: { Customer: 'payload.a' } }, 'participants.Customer: a role name is lower-case letters, digits, - and _ (at most 50)'],
    ['redact without from', { redact: [{ path: 'payload.a' }] }, 'redact.0.from: must be a non-empty list of role names (got undefined)'],
    ['redact with an unknown key', { redact: [{ path: 'payload.a', from: ['x'], to: [] }] }, 'redact.0.to: unknown key "to"'],
    ['redact with a bad condition', { redact: [{ path: 'payload.a', from: ['x'], when: [{ operation: 'eq' }] }] }, 'redact.0.when[0].field: is required'],
  ];
  for (const [what, extra, issue] of invalid) {
    it(`refuses ${what} at load, naming the path`, () => expect(compile(extra).issues).to.include(issue));
  }
});

describe('people: key and token parsing (pure)', () => {
  it('reads named and unnamed keys from CONVEYOR_API_KEYS', () => {
    const keys = parseApiKeys('crm=crm-key-4567:submit+delegate, old-style-key-1:read, =weird-key-01:read');
    expect(keys.map((k) => `${k.name}:${k.roles.join('+')}`)).to.deep.equal(['crm:submit+delegate', 'env#2:read', 'env#3:read']);
    expect(() => parseApiKeys('crm=short:read')).to.throw(/entry 1/);
  });

  it('tells a JWT from an API key', () => {
    expect(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig')).to.equal(true);
    expect(looksLikeJwt('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).to.equal(true);
    expect(looksLikeJwt('cvk_abcdef.ghijk')).to.equal(false);
    expect(looksLikeJwt('crm-key-4567')).to.equal(false);
  });
});
