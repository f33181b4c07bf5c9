/**
 * A local stand-in for the shop's search engine (seed 001: Elasticsearch), in memory, with a
 * small Elasticsearch-like API:
 *
 * - `PUT /indexes/:index/docs/:id` (the document) → `{ id, version }`
 * - `GET /indexes/:index/docs/:id` → `{ id, version, doc }`
 * - `GET /indexes/:index/_search?q=<text>&limit=10` → `{ total, hits: [{ id, doc }] }` (matches
 *   the id, or a word of the document's `name`, case-insensitively)
 * - `GET /_stats` → `{ indexes: { <index>: documents } }`
 *
 * Run directly: `npx tsx scripts/search-standin.ts` (port `SEARCH_PORT`, default 8083).
 */
import { HttpError, runMain, startJsonServer, type RunningJsonServer } from './lib/json-server';

export interface SearchStandin extends RunningJsonServer {
  indexes: Map<string, Map<string, { version: number; doc: Record<string, unknown> }>>;
}

export async function startSearchStandin(opts: { port?: number; host?: string } = {}): Promise<SearchStandin> {
  const indexes = new Map<string, Map<string, { version: number; doc: Record<string, unknown> }>>();
  const index = (name: string): Map<string, { version: number; doc: Record<string, unknown> }> => {
    let i = indexes.get(name);
    if (!i) indexes.set(name, (i = new Map()));
    return i;
  };
  const server = await startJsonServer([
    ['PUT', '/indexes/:index/docs/:id', (r) => {
      if (!r.body || typeof r.body !== 'object' || Array.isArray(r.body)) throw new HttpError(400, 'a document must be an object');
      const docs = index(r.params.index!);
      const version = (docs.get(r.params.id!)?.version ?? 0) + 1;
      docs.set(r.params.id!, { version, doc: r.body as Record<string, unknown> });
      return { id: r.params.id, version };
    }],
    ['GET', '/indexes/:index/docs/:id', (r) => {
      const d = indexes.get(r.params.index!)?.get(r.params.id!);
      if (!d) throw new HttpError(404, `no document ${r.params.id}`);
      return { id: r.params.id, ...d };
    }],
    ['GET', '/indexes/:index/_search', (r) => {
      const q = (r.query.get('q') ?? '').toLowerCase();
      const limit = Math.min(100, Number(r.query.get('limit') ?? 10) || 10);
      const hits: Array<{ id: string; doc: Record<string, unknown> }> = [];
      let total = 0;
      for (const [id, { doc }] of indexes.get(r.params.index!) ?? []) {
        const name = typeof doc.name === 'string' ? doc.name.toLowerCase() : '';
        if (q === '' || id.toLowerCase() === q || name.split(/\s+/).includes(q)) {
          total++;
          if (hits.length < limit) hits.push({ id, doc });
        }
      }
      return { total, hits };
    }],
    ['GET', '/_stats', () => ({ indexes: Object.fromEntries([...indexes].map(([n, d]) => [n, d.size])) })],
  ], opts.port ?? Number(process.env.SEARCH_PORT ?? 8083), opts.host ?? process.env.SEARCH_HOST ?? '127.0.0.1');
  return { ...server, indexes };
}

if (require.main === module) runMain('search stand-in', () => startSearchStandin());
