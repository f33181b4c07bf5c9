/**
 * Outbound safety: where Conveyor may send HTTP. Pure: no DNS, no sockets. The rule:
 *
 * - `CONVEYOR_OUTBOUND_ALLOW` unset: a request's `callbackUrl` may reach public addresses only
 *   (loopback, link-local, private, shared, multicast and reserved ranges are refused, in
 *   every IPv4 spelling and in IPv6, IPv4-mapped and NAT64 forms included); module URLs and
 *   the admin webhook, declared by the operator, may reach anything.
 * - `CONVEYOR_OUTBOUND_ALLOW` set (comma-separated host patterns and CIDRs): every outbound
 *   URL must match it, by name (`crm.example.com`, `*.example.com`, `*`) or by address (a
 *   CIDR such as `10.1.0.0/16`, or one address). A name pattern never opens a non-public
 *   address: only a CIDR that covers it does.
 *
 * The same check runs on the literal host at submit and on every resolved address at connect
 * time (see `outbound-agent.ts`), so neither a name nor a DNS answer that changes can bypass it.
 */
import { isIP } from 'node:net';

/** Who declared the URL: a submitter (`callback`) or the operator (`module`). */
export type OutboundKind = 'callback' | 'module';

/** An IP address as a number: 32 bits (IPv4) or 128 bits (IPv6). */
export interface IpAddress {
  v: 4 | 6;
  n: bigint;
}

interface Cidr extends IpAddress {
  bits: number;
}

/** The compiled `CONVEYOR_OUTBOUND_ALLOW`. */
export interface OutboundPolicy {
  /** Whether a list was given; when not, only the default refusals for callbacks apply. */
  set: boolean;
  hosts: string[];
  cidrs: Cidr[];
}

export type OutboundVerdict = { ok: true } | { ok: false; reason: string };

const V4_RANGES: Array<[string, string]> = [
  ['0.0.0.0/8', 'unspecified'], ['10.0.0.0/8', 'private'], ['100.64.0.0/10', 'shared (CGNAT)'],
  ['127.0.0.0/8', 'loopback'], ['169.254.0.0/16', 'link-local'], ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'], ['192.168.0.0/16', 'private'], ['198.18.0.0/15', 'reserved'],
  ['224.0.0.0/4', 'multicast'], ['240.0.0.0/4', 'reserved'],
];
const V6_RANGES: Array<[string, string]> = [
  ['::/128', 'unspecified'], ['::1/128', 'loopback'], ['fe80::/10', 'link-local'], ['fec0::/10', 'site-local'],
  ['fc00::/7', 'private (unique local)'], ['ff00::/8', 'multicast'],
];

/**
 * Parses an IPv4 address in any spelling a URL host accepts (WHATWG URL): 1 to 4 parts, each
 * decimal, octal (`0177`) or hex (`0x7f`), the last filling the remaining bytes, so
 * `2130706433`, `0x7f.1` and `0177.0.0.1` are all 127.0.0.1.
 */
export function parseIPv4(text: string): IpAddress | undefined {
  const parts = text.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return undefined;
  const nums: bigint[] = [];
  for (const p of parts) {
    let m: RegExpExecArray | null;
    if ((m = /^0[xX]([0-9a-fA-F]*)$/.exec(p))) nums.push(BigInt(`0x${m[1] || '0'}`));
    else if (/^0[0-7]+$/.test(p)) nums.push(BigInt(`0o${p.slice(1)}`));
    else if (/^(0|[1-9][0-9]*)$/.test(p)) nums.push(BigInt(p));
    else return undefined;
  }
  const last = nums.pop()!;
  if (nums.some((x) => x > 255n) || last >= 256n ** BigInt(5 - parts.length)) return undefined;
  let n = 0n;
  nums.forEach((x, i) => (n |= x << BigInt(24 - 8 * i)));
  return { v: 4, n: n | last };
}

/** Parses an IPv6 address (brackets and a zone id allowed), embedded IPv4 tails included. */
export function parseIPv6(text: string): IpAddress | undefined {
  const s = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (isIP(s) !== 6) return undefined;
  // An IPv4 tail (`::ffff:127.0.0.1`) becomes its two hex groups.
  const head = s.replace(/(\d+\.\d+\.\d+\.\d+)$/, (v4) => {
    const n = Number(parseIPv4(v4)!.n);
    return `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  });
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const group = (x: string | undefined): number[] => (x ? x.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const l = group(left);
  const r = group(right);
  const groups = right === undefined ? l : [...l, ...new Array<number>(Math.max(0, 8 - l.length - r.length)).fill(0), ...r];
  if (groups.length !== 8) return undefined;
  return { v: 6, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n) };
}

/** An address from a host or a resolver's answer; undefined for a name. */
export function parseIp(host: string): IpAddress | undefined {
  return host.includes(':') ? parseIPv6(host) : parseIPv4(host);
}

function parseCidr(text: string): Cidr | undefined {
  const [addr, bitsText] = text.split('/');
  const ip = addr === undefined ? undefined : parseIp(addr);
  if (!ip) return undefined;
  const max = ip.v === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
  if (bits < 0 || bits > max) return undefined;
  return { ...ip, bits };
}

function inCidr(ip: IpAddress, c: Cidr): boolean {
  if (ip.v !== c.v) return false;
  const shift = BigInt((c.v === 4 ? 32 : 128) - c.bits);
  return ip.n >> shift === c.n >> shift;
}

const RANGES = [...V4_RANGES, ...V6_RANGES].map(([cidr, label]) => ({ cidr: parseCidr(cidr)!, label }));
const V6_EMBEDDING = [parseCidr('::ffff:0:0/96')!, parseCidr('::/96')!, parseCidr('64:ff9b::/96')!];
const SIX_TO_FOUR = parseCidr('2002::/16')!;

/** The IPv4 address inside an IPv4-mapped, -compatible, NAT64 or 6to4 IPv6 address. */
function embeddedV4(ip: IpAddress): IpAddress | undefined {
  if (ip.v !== 6 || ip.n <= 1n) return undefined;
  if (V6_EMBEDDING.some((c) => inCidr(ip, c))) return { v: 4, n: ip.n & 0xffffffffn };
  if (inCidr(ip, SIX_TO_FOUR)) return { v: 4, n: (ip.n >> 80n) & 0xffffffffn };
  return undefined;
}

/** Why an address is not public (`loopback`, `link-local`, `private`, …), or undefined when it is. */
export function nonPublicKind(ip: IpAddress): string | undefined {
  const inner = embeddedV4(ip);
  if (inner) return nonPublicKind(inner);
  return RANGES.find((r) => inCidr(ip, r.cidr))?.label;
}

/** Compiles `CONVEYOR_OUTBOUND_ALLOW`; `errors` names each entry that is neither a CIDR nor a host pattern. */
export function parseOutboundAllow(raw: string | undefined): { policy: OutboundPolicy; errors: string[] } {
  const entries = (raw ?? '').split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
  const policy: OutboundPolicy = { set: entries.length > 0, hosts: [], cidrs: [] };
  const errors: string[] = [];
  for (const e of entries) {
    const cidr = /^[0-9a-fx.:[\]]+(\/\d+)?$/.test(e) && /[.:]|\/|^\d+$/.test(e) ? parseCidr(e.replace(/^\[(.*)\](\/\d+)?$/, '$1$2')) : undefined;
    if (cidr) policy.cidrs.push(cidr);
    else if (/^(\*|(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*)$/.test(e) && !/^[\d.]+$/.test(e)) policy.hosts.push(e);
    else errors.push(`"${e}" is neither a CIDR (10.0.0.0/8, fd00::/8, 127.0.0.1) nor a host pattern (api.example.com, *.example.com, *)`);
  }
  return { policy, errors };
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return host === pattern;
}

/** `localhost` and `*.localhost` are loopback by definition (RFC 6761) and never looked up. */
export function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

const LOOPBACK = [parseIPv4('127.0.0.1')!, parseIPv6('::1')!];

/**
 * The rule for one destination. `host` is the URL's host (a name or an address literal);
 * `addresses` are what the name resolved to, or undefined before resolution (at submit), in
 * which case only what is certain without DNS is refused.
 */
export function checkOutbound(kind: OutboundKind, policy: OutboundPolicy, host: string, addresses?: string[]): OutboundVerdict {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const literal = parseIp(name);
  const ips = literal ? [literal] : isLoopbackName(name) ? LOOPBACK : addresses?.map((a) => parseIp(a));
  if (ips?.some((ip) => ip === undefined)) return { ok: false, reason: `${host} resolved to something that is not an address` };
  const inList = (ip: IpAddress): boolean => policy.cidrs.some((c) => inCidr(ip, c) || (embeddedV4(ip) !== undefined && inCidr(embeddedV4(ip)!, c)));
  const nameListed = !literal && policy.hosts.some((p) => hostMatches(p, name));
  if (ips) {
    for (const ip of ips as IpAddress[]) {
      const kindOf = nonPublicKind(ip);
      if (kindOf && (policy.set || kind === 'callback') && !inList(ip)) {
        return { ok: false, reason: `${host}${literal ? '' : ` (${formatIp(ip)})`} is a ${kindOf} address${policy.set ? ', not in CONVEYOR_OUTBOUND_ALLOW' : ''}` };
      }
      if (policy.set && !nameListed && !inList(ip)) return { ok: false, reason: `${host}${literal ? '' : ` (${formatIp(ip)})`} is not in CONVEYOR_OUTBOUND_ALLOW` };
    }
    return { ok: true };
  }
  // A name not yet resolved: refuse only when no answer could match the list.
  if (policy.set && !nameListed && policy.cidrs.length === 0) return { ok: false, reason: `${host} is not in CONVEYOR_OUTBOUND_ALLOW` };
  return { ok: true };
}

/** The rule for a URL (its host as the WHATWG parser normalises it, which is what a client connects to). */
export function checkOutboundUrl(kind: OutboundKind, policy: OutboundPolicy, url: string, addresses?: string[]): OutboundVerdict {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  return checkOutbound(kind, policy, host, addresses);
}

/**
 * Resolves a URL's name with `resolve` (injected: tests never use real DNS) and checks every
 * address it returns.
 */
export async function checkOutboundResolved(kind: OutboundKind, policy: OutboundPolicy, url: string, resolve: (host: string) => Promise<string[]>): Promise<OutboundVerdict> {
  const first = checkOutboundUrl(kind, policy, url);
  if (!first.ok) return first;
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  if (parseIp(host) || isLoopbackName(host.toLowerCase())) return first;
  return checkOutbound(kind, policy, host, await resolve(host));
}

function formatIp(ip: IpAddress): string {
  if (ip.v === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.n >> s) & 255n)).join('.');
  return Array.from({ length: 8 }, (_, i) => ((ip.n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
}
