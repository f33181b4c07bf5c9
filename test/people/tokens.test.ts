/**
 * Actors from JWT bearer tokens and delegation (issue 12 §1), through the HTTP API with real
 * tokens: HS256 signed here with the shared secret, RS256 and ES256 from a JWKS that a local
 * server on 127.0.0.1 serves (with a key rotation that needs a refetch). Every bad token gets
 * 401 with its own code and changes nothing; delegation headers need the `delegate` role.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { startTestEngine, type ErrorBody, type TestEngine } from '../support/engine';
import { pollUntil } from '../support/poll';

const FIXTURES = path.join(__dirname, 'fixtures');
const SECRET = 'a-test-secret-of-at-least-32-characters!';
const ISSUER = 'https://id.example.test';
const AUDIENCE = 'conveyor-test';

interface Claims {
  sub?: string;
  name?: string;
  roles?: unknown;
  [k: string]: unknown;
}

/** An HS256 token; `over` changes the issuer, audience, lifetime or secret. */
async function hs256(claims: Claims, over: { iss?: string; aud?: string; exp?: string | number; secret?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(over.iss ?? ISSUER)
    .setAudience(over.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(over.exp ?? '5m')
    .sign(new TextEncoder().encode(over.secret ?? SECRET));
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

const ticket = (customer: string): Record<string, unknown> => ({ customer: { id: customer, name: 'Ann', phone: '+7 900 111-22-33' }, watchers: [] });

describe('people: JWT actors (HS256) through the API', function () {
  this.timeout(60_000);
  let t: TestEngine;

  before(async () => {
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      env: { CONVEYOR_JWT_SECRET: SECRET, CONVEYOR_JWT_ISSUER: ISSUER, CONVEYOR_JWT_AUDIENCE: AUDIENCE },
      extraKeys: 'crm=crm-key-00000001:submit+read+delegate,plain=plain-key-0000001:submit+read',
    });
  });
  after(() => t?.close());

  it('accepts a signed token: sub is the actor, roles come from the claim, and the audit names the issuer', async () => {
    const anna = await hs256({ sub: 'user-anna', name: 'Anna', roles: ['submit'] });
    const sub = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key: anna, body: ticket('user-anna') });
    expect(sub.status, sub.text).to.equal(202);
    // Without `read`, she sees her own ticket (she is its customer) ...
    const mine = await t.api<{ id: string; actions: Array<{ code: string }> }>('GET', `/api/requests/${sub.body.id}`, { key: anna });
    expect(mine.status, mine.text).to.equal(200);
    expect(mine.body.actions.map((a) => a.code)).to.deep.equal(['cancel']);
    // ... and may cancel it; `by` is her actor id, not a key name.
    const cancel = await t.api('POST', `/api/requests/${sub.body.id}/actions/cancel`, { key: anna, body: {} });
    expect(cancel.status, cancel.text).to.equal(200);
    const steps = await t.engine.store.listStepRuns(sub.body.id);
    expect((steps.find((s) => s.stepId === 'open')!.output as { by: string; byName: string })).to.deep.include({ by: 'user-anna', byName: 'Anna' });
    const audit = await t.api<{ items: Array<{ actor: string; via: string; outcome: string }> }>('GET', `/api/requests/${sub.body.id}/audit`);
    expect(audit.body.items).to.have.length(1);
    expect(audit.body.items[0]).to.deep.include({ actor: 'user-anna', via: `jwt:${ISSUER}`, outcome: 'accepted' });
  });

  it('refuses each kind of bad token with 401 and its own code, and changes nothing', async () => {
    const claims = { sub: 'user-mallory', roles: ['submit', 'read'] };
    const good = await hs256(claims);
    const [h, p] = good.split('.');
    const cases: Array<[string, string, string]> = [
      ['a bad signature', await hs256(claims, { secret: 'another-secret-of-at-least-32-characters' }), 'CONVEYOR_ERR_TOKEN_SIGNATURE'],
      ['a payload changed after signing', `${h}.${b64({ ...claims, roles: ['admin'], iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })}.${good.split('.')[2]}`, 'CONVEYOR_ERR_TOKEN_SIGNATURE'],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`, 'CONVEYOR_ERR_TOKEN_ALGORITHM'],
      ['alg None spelled otherwise', `${b64({ alg: 'None' })}.${p}.`, 'CONVEYOR_ERR_TOKEN_ALGORITHM'],
      ['an RS256 header on an HS256 server', `${b64({ alg: 'RS256' })}.${p}.${good.split('.')[2]}`, 'CONVEYOR_ERR_TOKEN_ALGORITHM'],
      ['an expired token', await hs256(claims, { exp: Math.floor(Date.now() / 1000) - 120 }), 'CONVEYOR_ERR_TOKEN_EXPIRED'],
      ['a wrong issuer', await hs256(claims, { iss: 'https://evil.example.test' }), 'CONVEYOR_ERR_TOKEN_ISSUER'],
      ['a wrong audience', await hs256(claims, { aud: 'another-service' }), 'CONVEYOR_ERR_TOKEN_AUDIENCE'],
      ['no sub', await hs256({ roles: ['submit'] }), 'CONVEYOR_ERR_TOKEN_INVALID'],
      ['a header that is not JSON', `eyJub3QganNvbg.${p}.sig`, 'CONVEYOR_ERR_TOKEN_INVALID'],
    ];
    const before = await t.countRows();
    for (const [what, token, code] of cases) {
      const res = await t.api<ErrorBody>('POST', '/api/pipelines/ticket/requests', { key: token, body: ticket('user-mallory') });
      expect(res.status, `${what}: ${res.text}`).to.equal(401);
      expect(res.body.error.code, what).to.equal(code);
      const read = await t.api<ErrorBody>('GET', '/api/requests', { key: token });
      expect(read.status, what).to.equal(401);
    }
    expect(await t.countRows()).to.deep.equal(before);
    // The good token itself works, so the refusals above are about what was changed.
    expect((await t.api('GET', '/api/requests', { key: good })).status).to.equal(200);
  });

  it('a role named as a participant role in a token grants nothing on a request', async () => {
    const anna = await hs256({ sub: 'user-anna2', roles: ['submit'] });
    const id = (await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key: anna, body: ticket('user-anna2') })).body.id;
    // "customer" in the claim: not this ticket's customer, so it is not found at all.
    const claimer = await hs256({ sub: 'user-eve', roles: ['customer', 'submit'] });
    const res = await t.api<ErrorBody>('POST', `/api/requests/${id}/actions/cancel`, { key: claimer, body: {} });
    expect(res.status, res.text).to.equal(404);
    expect((await t.api<{ status: string }>('GET', `/api/requests/${id}`)).body.status).to.equal('waiting');
  });

  it('a delegate key acts for the actor it names; anyone else sending the headers gets 403', async () => {
    const asAnna = { 'x-conveyor-actor': 'user-dora', 'x-conveyor-actor-roles': 'submit', 'x-conveyor-actor-name': 'Dora' };
    const sub = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key: 'crm-key-00000001', headers: asAnna, body: ticket('user-dora') });
    expect(sub.status, sub.text).to.equal(202);
    // Dora (through the CRM) sees her ticket; the CRM's own `read` is not hers.
    const list = await t.api<{ items: Array<{ id: string }> }>('GET', '/api/requests', { key: 'crm-key-00000001', headers: asAnna });
    expect(list.body.items.map((r) => r.id)).to.deep.equal([sub.body.id]);
    const cancel = await t.api('POST', `/api/requests/${sub.body.id}/actions/cancel`, { key: 'crm-key-00000001', headers: asAnna, body: {} });
    expect(cancel.status, cancel.text).to.equal(200);
    const audit = await t.api<{ items: Array<{ actor: string; via: string }> }>('GET', `/api/requests/${sub.body.id}/audit`);
    expect(audit.body.items[0]).to.deep.include({ actor: 'user-dora', via: 'key:crm' });

    const before = await t.countRows();
    const refused: Array<[string, string, Record<string, string>]> = [
      ['a key without delegate', 'plain-key-0000001', asAnna],
      ['a key without delegate, roles header alone', 'plain-key-0000001', { 'x-conveyor-actor-roles': 'submit' }],
      ['a token', await hs256({ sub: 'user-anna', roles: ['submit', 'delegate'] }), asAnna],
      ['a delegate key handing on a role it lacks', 'crm-key-00000001', { ...asAnna, 'x-conveyor-actor-roles': 'submit,operate' }],
      ['a delegate key handing on delegate', 'crm-key-00000001', { ...asAnna, 'x-conveyor-actor-roles': 'delegate' }],
    ];
    for (const [what, key, headers] of refused) {
      const res = await t.api<ErrorBody>('POST', '/api/pipelines/ticket/requests', { key, headers, body: ticket('user-dora') });
      expect(res.status, `${what}: ${res.text}`).to.equal(403);
      expect(res.body.error.code, what).to.equal('CONVEYOR_ERR_DELEGATION_FORBIDDEN');
    }
    expect(await t.countRows()).to.deep.equal(before);
  });

  it('a person without read wakes only its own requests with an event; a system key keeps its global submit', async () => {
    const anna = await hs256({ sub: 'user-anna', roles: ['submit'] });
    const eve = await hs256({ sub: 'user-eve', roles: ['submit'] });
    const parcel = `parcel-${Date.now()}`;
    const sub = await t.api<{ id: string }>('POST', '/api/pipelines/parcel/requests', { key: anna, body: { owner: 'user-anna', parcel } });
    expect(sub.status, sub.text).to.equal(202);
    const until = Date.now() + 10_000;
    await pollUntil(async () => (await t.api<{ status: string }>('GET', `/api/requests/${sub.body.id}`)).body.status, (s) => s === 'waiting', { timeoutMs: 10_000, everyMs: 30, failure: () => 'the parcel never waited' });
    // eve (another person, no read) learns nothing and wakes nothing.
    const byEve = await t.api<{ woken: number }>('POST', '/api/events/parcel.arrived', { key: eve, body: { key: parcel } });
    expect(byEve.status, byEve.text).to.equal(200);
    expect(byEve.body.woken).to.equal(0);
    // So does eve through the CRM's delegate key.
    const viaCrm = await t.api<{ woken: number }>('POST', '/api/events/parcel.arrived', {
      key: 'crm-key-00000001', headers: { 'x-conveyor-actor': 'user-eve', 'x-conveyor-actor-roles': 'submit' }, body: { key: parcel },
    });
    expect(viaCrm.body.woken).to.equal(0);
    expect((await t.api<{ status: string }>('GET', `/api/requests/${sub.body.id}`)).body.status).to.equal('waiting');
    // The owner wakes it.
    const byAnna = await t.api<{ woken: number; requests: string[] }>('POST', '/api/events/parcel.arrived', { key: anna, body: { key: parcel } });
    expect(byAnna.body).to.deep.include({ woken: 1, requests: [sub.body.id] });
    // A system key (the plain key acting for itself) is not a person: its submit is global.
    const other = `parcel-b-${Date.now()}`;
    const sub2 = await t.api<{ id: string }>('POST', '/api/pipelines/parcel/requests', { key: anna, body: { owner: 'user-anna', parcel: other } });
    await pollUntil(async () => (await t.api<{ woken: number }>('POST', '/api/events/parcel.arrived', { key: 'plain-key-0000001', body: { key: other } })).body.woken, (n) => n === 1, {
      timeoutMs: until + 10_000 - Date.now(), everyMs: 30, failure: () => `request ${sub2.body.id} was never woken`,
    });
  });

  it('named keys in CONVEYOR_API_KEYS: the name is the actor id', async () => {
    const sub = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key: 'plain-key-0000001', body: ticket('plain') });
    const cancel = await t.api('POST', `/api/requests/${sub.body.id}/actions/cancel`, { key: 'plain-key-0000001', body: {} });
    expect(cancel.status, cancel.text).to.equal(200);
    const audit = await t.api<{ items: Array<{ actor: string; via: string }> }>('GET', `/api/requests/${sub.body.id}/audit`);
    expect(audit.body.items[0]).to.deep.include({ actor: 'plain', via: 'key:plain' });
  });
});

/** A JWKS endpoint on 127.0.0.1 whose key set the test can change, counting fetches. */
async function startJwks(): Promise<{ url: string; keys: JWK[]; fetches: () => number; close(): Promise<void> }> {
  const keys: JWK[] = [];
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return { url, keys, fetches: () => fetches, close: () => new Promise((r) => server.close(() => r())) };
}

describe('people: JWT actors (RS256 / ES256 from a JWKS) through the API', function () {
  this.timeout(60_000);
  let t: TestEngine;
  let jwks: Awaited<ReturnType<typeof startJwks>>;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;

  const sign = (alg: 'RS256' | 'ES256', kid: string, key: CryptoKey, claims: Claims): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg, kid }).setIssuer(ISSUER).setIssuedAt().setExpirationTime('5m').sign(key);

  before(async () => {
    jwks = await startJwks();
    rsa = await generateKeyPair('RS256');
    jwks.keys.push({ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' });
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      // The roles claim renamed; no audience required; a short refetch cooldown for the rotation.
      env: { CONVEYOR_JWT_JWKS_URL: jwks.url, CONVEYOR_JWT_ISSUER: ISSUER, CONVEYOR_JWT_ROLES_CLAIM: 'perms', CONVEYOR_JWT_JWKS_COOLDOWN_MS: '0' },
    });
  });
  after(async () => {
    await t?.close();
    await jwks?.close();
  });

  it('verifies RS256 tokens against the served keys, reading roles from the renamed claim', async () => {
    const token = await sign('RS256', 'rsa-1', rsa.privateKey, { sub: 'user-rita', perms: ['submit', 'read'] });
    const sub = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key: token, body: ticket('user-rita') });
    expect(sub.status, sub.text).to.equal(202);
    const list = await t.api<{ items: unknown[] }>('GET', '/api/requests', { key: token });
    expect(list.status).to.equal(200);
    // `roles` is not the claim here: a token with only `roles` has none.
    const wrongClaim = await sign('RS256', 'rsa-1', rsa.privateKey, { sub: 'user-rita', roles: ['submit'] });
    expect((await t.api('POST', '/api/pipelines/ticket/requests', { key: wrongClaim, body: ticket('user-rita') })).status).to.equal(403);
  });

  it('fetches the key set again for an unknown kid (rotation), with ES256 too; a key not served is refused', async () => {
    const first = await sign('RS256', 'rsa-1', rsa.privateKey, { sub: 'user-rita', perms: ['read'] });
    expect((await t.api('GET', '/api/requests', { key: first })).status).to.equal(200);
    const fetchedBefore = jwks.fetches();
    const ec = await generateKeyPair('ES256');
    jwks.keys.push({ ...(await exportJWK(ec.publicKey)), kid: 'ec-2', alg: 'ES256', use: 'sig' });
    const rotated = await sign('ES256', 'ec-2', ec.privateKey, { sub: 'user-rita', perms: ['read'] });
    const res = await t.api('GET', '/api/requests', { key: rotated });
    expect(res.status, res.text).to.equal(200);
    expect(jwks.fetches()).to.be.greaterThan(fetchedBefore);
    // A known kid is served from the cache: no fetch.
    const cached = jwks.fetches();
    expect((await t.api('GET', '/api/requests', { key: first })).status).to.equal(200);
    expect(jwks.fetches()).to.equal(cached);

    const rogue = await generateKeyPair('RS256');
    const forged = await sign('RS256', 'rsa-1', rogue.privateKey, { sub: 'user-rita', perms: ['admin'] });
    const bad = await t.api<ErrorBody>('GET', '/api/requests', { key: forged });
    expect(bad.status).to.equal(401);
    expect(bad.body.error.code).to.equal('CONVEYOR_ERR_TOKEN_SIGNATURE');
    const unknownKid = await sign('RS256', 'nobody', rogue.privateKey, { sub: 'user-rita', perms: ['admin'] });
    const bad2 = await t.api<ErrorBody>('GET', '/api/requests', { key: unknownKid });
    expect(bad2.status).to.equal(401);
    expect(bad2.body.error.code).to.equal('CONVEYOR_ERR_TOKEN_SIGNATURE');
    // HS256 is not accepted from a JWKS server (no algorithm confusion with the public key).
    const hs = await hs256({ sub: 'user-rita', perms: ['admin'] });
    const bad3 = await t.api<ErrorBody>('GET', '/api/requests', { key: hs });
    expect(bad3.status).to.equal(401);
    expect(bad3.body.error.code).to.equal('CONVEYOR_ERR_TOKEN_ALGORITHM');
  });
});
