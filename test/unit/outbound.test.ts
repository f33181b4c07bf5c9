/**
 * The outbound rule (src/transports/outbound.ts) as a table: which destinations a callback or a
 * module URL may reach, with `CONVEYOR_OUTBOUND_ALLOW` unset and set. Names are resolved by an
 * injected resolver: no DNS, and no traffic anywhere. The last block drives a real HTTP agent
 * through the connect-time lookup guard, against a server on 127.0.0.1 only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type dns from 'node:dns';
import { expect } from 'chai';
import { checkOutbound, checkOutboundResolved, checkOutboundUrl, parseIp, parseOutboundAllow } from '../../src/transports/outbound';
import { guardedLookup, OUTBOUND_REFUSED } from '../../src/transports/outbound-agent';

const NONE = parseOutboundAllow(undefined).policy;
const policy = (raw: string) => {
  const p = parseOutboundAllow(raw);
  expect(p.errors).to.deep.equal([]);
  return p.policy;
};

/** A fake DNS: names of the test and what they "resolve" to. */
const ZONE: Record<string, string[]> = {
  'public.test': ['93.184.216.34'],
  'metadata.test': ['169.254.169.254'],
  'intranet.test': ['10.1.2.3'],
  'home.test': ['192.168.1.10'],
  'docker.test': ['172.17.0.2'],
  'mixed.test': ['93.184.216.34', '10.0.0.1'],
  'loop6.test': ['::1'],
  'mapped.test': ['::ffff:169.254.169.254'],
  'ula.test': ['fd12:3456::1'],
  'v6public.test': ['2606:4700::1111'],
  'crm.example.com': ['93.184.216.35'],
  'crm-internal.example.com': ['10.20.0.5'],
};
const resolve = (host: string): Promise<string[]> => Promise.resolve(ZONE[host] ?? []);

describe('outbound rule: addresses in every spelling', () => {
  const table: Array<[string, string | undefined]> = [
    ['127.0.0.1', 'loopback'], ['127.9.9.9', 'loopback'], ['2130706433', 'loopback'], ['0x7f.1', 'loopback'], ['0x7f000001', 'loopback'],
    ['0177.0.0.1', 'loopback'], ['127.1', 'loopback'], ['0.0.0.0', 'unspecified'], ['0', 'unspecified'],
    ['169.254.169.254', 'link-local'], ['0xa9.0xfe.0xa9.0xfe', 'link-local'], ['2852039166', 'link-local'],
    ['10.0.0.1', 'private'], ['012.0.0.1', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.0.1', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'], ['224.0.0.1', 'multicast'], ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'], ['[::1]', 'loopback'], ['0:0:0:0:0:0:0:1', 'loopback'], ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::ffff:169.254.169.254', 'link-local'], ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'], ['64:ff9b::a9fe:a9fe', 'link-local'], ['2002:c0a8:0101::1', 'private'],
    ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'], ['fd00::1', 'private (unique local)'], ['fc00::1', 'private (unique local)'], ['ff02::1', 'multicast'],
    ['8.8.8.8', undefined], ['172.32.0.1', undefined], ['172.15.255.255', undefined], ['192.169.0.1', undefined], ['100.128.0.1', undefined],
    ['2606:4700::1111', undefined], ['::ffff:8.8.8.8', undefined],
  ];
  for (const [host, kind] of table) {
    it(`${host} is ${kind ?? 'public'}`, () => {
      const ip = parseIp(host.replace(/^\[(.*)\]$/, '$1'));
      expect(ip, 'parses').to.not.equal(undefined);
      const verdict = checkOutbound('callback', NONE, host);
      if (kind) {
        expect(verdict.ok).to.equal(false);
        expect((verdict as { reason: string }).reason).to.include(`is a ${kind} address`);
      } else expect(verdict).to.deep.equal({ ok: true });
    });
  }

  it('refuses what is not an address once resolved, and parses no address out of garbage', () => {
    for (const bad of ['1.2.3.4.5', '256.0.0.1', '0x100000000', '1.2.3.08', 'a.b.c.d', '::g']) expect(parseIp(bad), bad).to.equal(undefined);
    expect(checkOutbound('callback', NONE, 'x.test', ['not-an-ip']).ok).to.equal(false);
  });
});

describe('outbound rule: URLs, names and the allow list', () => {
  const table: Array<{ kind: 'callback' | 'module'; allow: string; url: string; ok: boolean; reason?: string }> = [
    // Unset: callbacks reach public addresses only; the operator's module URLs reach anything.
    { kind: 'callback', allow: '', url: 'http://2130706433:8080/cb', ok: false, reason: '127.0.0.1 is a loopback address' },
    { kind: 'callback', allow: '', url: 'http://0x7f.1/cb', ok: false, reason: 'loopback' },
    { kind: 'callback', allow: '', url: 'http://0177.0.0.1/cb', ok: false, reason: 'loopback' },
    { kind: 'callback', allow: '', url: 'http://[::ffff:127.0.0.1]/cb', ok: false, reason: 'loopback' },
    { kind: 'callback', allow: '', url: 'http://localhost:3000/cb', ok: false, reason: 'localhost (127.0.0.1) is a loopback address' },
    { kind: 'callback', allow: '', url: 'http://api.localhost/cb', ok: false, reason: 'loopback' },
    { kind: 'callback', allow: '', url: 'http://169.254.169.254/latest/meta-data/', ok: false, reason: 'link-local' },
    { kind: 'callback', allow: '', url: 'https://metadata.test/', ok: false, reason: 'metadata.test (169.254.169.254) is a link-local address' },
    { kind: 'callback', allow: '', url: 'https://intranet.test/hook', ok: false, reason: '(10.1.2.3) is a private address' },
    { kind: 'callback', allow: '', url: 'https://home.test/hook', ok: false, reason: 'private' },
    { kind: 'callback', allow: '', url: 'https://docker.test/hook', ok: false, reason: 'private' },
    { kind: 'callback', allow: '', url: 'https://mixed.test/hook', ok: false, reason: '(10.0.0.1)' },
    { kind: 'callback', allow: '', url: 'https://loop6.test/hook', ok: false, reason: 'loopback' },
    { kind: 'callback', allow: '', url: 'https://mapped.test/hook', ok: false, reason: 'link-local' },
    { kind: 'callback', allow: '', url: 'https://ula.test/hook', ok: false, reason: 'unique local' },
    { kind: 'callback', allow: '', url: 'https://public.test/hook', ok: true },
    { kind: 'callback', allow: '', url: 'https://v6public.test/hook', ok: true },
    { kind: 'callback', allow: '', url: 'https://8.8.8.8/hook', ok: true },
    { kind: 'module', allow: '', url: 'http://127.0.0.1:8081/find-deal', ok: true },
    { kind: 'module', allow: '', url: 'http://intranet.test/find-deal', ok: true },
    // Set: everything must match it; a CIDR opens the addresses it covers.
    { kind: 'callback', allow: '127.0.0.0/8', url: 'http://127.0.0.1:9999/cb', ok: true },
    { kind: 'callback', allow: '127.0.0.0/8', url: 'http://2130706433:9999/cb', ok: true },
    { kind: 'callback', allow: '127.0.0.0/8', url: 'http://[::ffff:127.0.0.1]:9999/cb', ok: true },
    { kind: 'callback', allow: '127.0.0.0/8', url: 'http://[::1]:9999/cb', ok: false, reason: 'not in CONVEYOR_OUTBOUND_ALLOW' },
    { kind: 'callback', allow: '127.0.0.0/8', url: 'http://169.254.169.254/', ok: false, reason: 'link-local address, not in CONVEYOR_OUTBOUND_ALLOW' },
    { kind: 'callback', allow: '127.0.0.0/8', url: 'https://public.test/', ok: false, reason: 'public.test (93.184.216.34) is not in CONVEYOR_OUTBOUND_ALLOW' },
    { kind: 'module', allow: '127.0.0.0/8', url: 'http://intranet.test/x', ok: false, reason: 'private address, not in CONVEYOR_OUTBOUND_ALLOW' },
    { kind: 'module', allow: '10.0.0.0/8', url: 'http://intranet.test/x', ok: true },
    { kind: 'module', allow: '10.1.2.3', url: 'http://intranet.test/x', ok: true },
    { kind: 'module', allow: '10.1.2.4', url: 'http://intranet.test/x', ok: false },
    { kind: 'module', allow: 'fd00::/8', url: 'http://ula.test/x', ok: true },
    // Name patterns allow public addresses by name, and never open a private one.
    { kind: 'callback', allow: '*.example.com', url: 'https://crm.example.com/hook', ok: true },
    { kind: 'callback', allow: '*.example.com', url: 'https://example.com/hook', ok: false, reason: 'not in CONVEYOR_OUTBOUND_ALLOW' },
    { kind: 'callback', allow: '*.example.com', url: 'https://crm-internal.example.com/hook', ok: false, reason: 'private address' },
    { kind: 'callback', allow: '*.example.com,10.20.0.0/16', url: 'https://crm-internal.example.com/hook', ok: true },
    { kind: 'module', allow: 'crm.example.com', url: 'https://crm.example.com/find', ok: true },
    { kind: 'module', allow: 'crm.example.com', url: 'https://public.test/find', ok: false },
    { kind: 'callback', allow: '*', url: 'https://public.test/', ok: true },
    { kind: 'callback', allow: '*', url: 'https://metadata.test/', ok: false, reason: 'link-local' },
    { kind: 'callback', allow: '*', url: 'http://0x7f.1/', ok: false, reason: 'loopback' },
  ];
  for (const row of table) {
    it(`${row.kind} ${row.url} with ${row.allow ? `allow "${row.allow}"` : 'no list'}: ${row.ok ? 'allowed' : 'refused'}`, async () => {
      const verdict = await checkOutboundResolved(row.kind, policy(row.allow), row.url, resolve);
      expect(verdict.ok, JSON.stringify(verdict)).to.equal(row.ok);
      if (row.reason) expect((verdict as { reason: string }).reason).to.include(row.reason);
    });
  }

  it('at submit (no DNS), refuses literals for sure and a name only when no answer could match', () => {
    expect(checkOutboundUrl('callback', NONE, 'https://metadata.test/').ok, 'a name waits for connect time').to.equal(true);
    expect(checkOutboundUrl('callback', policy('*.example.com'), 'https://public.test/').ok).to.equal(false);
    expect(checkOutboundUrl('callback', policy('10.0.0.0/8'), 'https://public.test/').ok, 'it may resolve into the CIDR').to.equal(true);
    expect(checkOutboundUrl('callback', NONE, 'not a url').ok).to.equal(false);
  });

  it('reads the list: CIDRs, single addresses, bracketed IPv6 and host patterns; names bad entries', () => {
    const { policy: p, errors } = parseOutboundAllow(' 127.0.0.0/8, ::1 , [fd00::]/8, 10.1.2.3, *.Example.com, crm.local, 10.0.0.0/33, bad host, *.*.x ');
    expect(p.set).to.equal(true);
    expect(p.cidrs.map((c) => `${c.v}/${c.bits}`)).to.deep.equal(['4/8', '6/128', '6/8', '4/32']);
    expect(p.hosts).to.deep.equal(['*.example.com', 'crm.local']);
    expect(errors).to.have.length(3);
    expect(errors[0]).to.include('"10.0.0.0/33" is neither a CIDR');
    expect(parseOutboundAllow('  ,  ').policy.set).to.equal(false);
  });
});

describe('outbound rule at connect time: the lookup guard of the HTTP agents', () => {
  let server: http.Server;
  let port: number;
  let hits = 0;
  before(async () => {
    server = http.createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** A fake `dns.lookup` answering from `answers`, one answer per call (the last repeats). */
  const fakeLookup = (answers: string[]) => {
    let calls = 0;
    const lookup = ((_host: string, _opts: unknown, cb: (e: Error | null, a: dns.LookupAddress[]) => void) => {
      const address = answers[Math.min(calls++, answers.length - 1)]!;
      cb(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
    }) as unknown as typeof dns.lookup;
    return lookup;
  };
  const get = (agent: http.Agent): Promise<{ status?: number; code?: string }> =>
    new Promise((done) => {
      const req = http.get({ host: 'svc.test', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => done({ status: res.statusCode }));
      });
      req.on('error', (err) => done({ code: (err as { code?: string }).code }));
    });

  it('refuses a name that resolves to a refused address before any connection is made', async () => {
    hits = 0;
    const agent = new http.Agent({ lookup: guardedLookup('callback', NONE, fakeLookup(['127.0.0.1'])) });
    expect(await get(agent)).to.deep.equal({ code: OUTBOUND_REFUSED });
    expect(hits).to.equal(0);
    agent.destroy();
  });

  it('checks again at every connection, so a rebinding answer is refused', async () => {
    hits = 0;
    // The list allows 127.0.0.1 only: the first answer is allowed and reaches the server; the
    // name then "rebinds" to 127.0.0.3, which the list does not cover.
    const agent = new http.Agent({ keepAlive: false, lookup: guardedLookup('callback', policy('127.0.0.1/32'), fakeLookup(['127.0.0.1', '127.0.0.3'])) });
    expect(await get(agent)).to.deep.equal({ status: 200 });
    expect(await get(agent)).to.deep.equal({ code: OUTBOUND_REFUSED });
    expect(hits).to.equal(1);
    agent.destroy();
  });
});
