/**
 * The connect-time half of outbound safety: HTTP(S) agents whose DNS lookup refuses any
 * address that the rule of `outbound.ts` refuses. The check runs on the addresses the socket
 * is about to use, at every connection, so a name that resolves (or re-resolves, as in DNS
 * rebinding) to a refused address never gets a connection. Address literals skip the lookup
 * in Node, so {@link assertOutbound} checks the URL itself before each request.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkOutbound, checkOutboundUrl, type OutboundKind, type OutboundPolicy } from './outbound';

/** The code of a refused destination (on the error the client call rejects with). */
export const OUTBOUND_REFUSED = 'CONVEYOR_OUTBOUND_REFUSED';

export class OutboundRefusedError extends Error {
  readonly code = OUTBOUND_REFUSED;
}

/** Wraps `lookup` (default `dns.lookup`) so that every address it returns is checked first. */
export function guardedLookup(kind: OutboundKind, policy: OutboundPolicy, lookup: typeof dns.lookup = dns.lookup): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as unknown as dns.LookupAddress[];
      const verdict = checkOutbound(kind, policy, hostname, list.map((a) => a.address));
      if (!verdict.ok) return callback(new OutboundRefusedError(`outbound call refused: ${verdict.reason}`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

/** An http and an https agent that only connect where the rule allows. */
export function createOutboundAgents(kind: OutboundKind, policy: OutboundPolicy, agentOptions: http.AgentOptions = {}): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  const lookup = guardedLookup(kind, policy);
  return { httpAgent: new http.Agent({ ...agentOptions, lookup }), httpsAgent: new https.Agent({ ...agentOptions, lookup }) };
}

/** Throws {@link OutboundRefusedError} when the URL's own host (a literal, or `localhost`) is refused. */
export function assertOutbound(kind: OutboundKind, policy: OutboundPolicy, url: string): void {
  const verdict = checkOutboundUrl(kind, policy, url);
  if (!verdict.ok) throw new OutboundRefusedError(`outbound call refused: ${verdict.reason}`);
}
