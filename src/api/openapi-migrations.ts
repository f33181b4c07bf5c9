/**
 * The OpenAPI description of the migration routes (`routes-migrations.ts`), merged into the
 * document by `openapi.ts`, whose helpers it takes as an argument.
 */
import type { OpenApiHelpers } from './openapi-overview';

type Schema = Record<string, unknown>;

type Helpers = OpenApiHelpers & { error(description: string): unknown };
const int = { type: 'integer' };
const str = { type: 'string' };
const time = { type: 'string', format: 'date-time' };
const stepMap = { type: 'object', additionalProperties: str };

function migrationSchemas(h: Helpers): Record<string, Schema> {
  const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: 'null' }] });
  const plan = h.obj({ toVersion: int, mapping: stepMap, waits: { type: 'object', additionalProperties: { enum: ['keep', 'rekey'] } } }, ['toVersion']);
  const problem = h.obj({ path: str, message: str });
  const schemas: Record<string, Schema> = {
    MigrationPlan: plan,
    Migration: h.obj({
      id: str, pipeline: str, fromVersion: int, toVersion: int, dryRun: { type: 'boolean' }, status: { enum: ['running', 'done', 'failed'] },
      plan: {}, filter: {}, actor: str, counts: h.obj({ total: int, migrated: int, refused: int, left: int }),
      refusals: { type: 'array', items: h.obj({ requestId: str, problems: { type: 'array', items: problem } }) },
      error: nullable(str), createdAt: time, updatedAt: time, finishedAt: nullable(time), links: h.obj({ self: str }),
    }),
  };
  schemas.PipelineVersions = h.obj({
    items: { type: 'array', items: h.obj({ version: int, hash: str, createdAt: time, current: { type: 'boolean' }, active: int, requests: { type: 'object', additionalProperties: int } }) },
    nextCursor: { type: 'null' },
  });
  const names = { type: 'array', items: str };
  schemas.VersionDiff = h.obj({
    pipeline: str, from: int, to: int, mapping: stepMap, added: names, removed: names, changed: names, renamed: { type: 'array', items: h.obj({ from: str, to: str }) },
  });
  return schemas;
}

function migrationPaths(h: Helpers): Record<string, Record<string, unknown>> {
  const id = { name: 'id', in: 'path', required: true, schema: str };
  const q = (name: string, description: string, required = false) => ({ name, in: 'query', required, schema: str, description });
  const body = (schema: Schema) => ({ required: true, content: { 'application/json': { schema } } });
  const filter = h.obj({ status: str, step: str, businessKey: str, since: time, until: time }, []);
  const paths = {
    '/api/requests/{id}/migrate': {
      post: {
        summary: 'Move one request to another version of its pipeline, checked first (one transaction guarded by its rev)',
        tags: ['operations'], ...h.secured('operate'), parameters: [{ ...id, description: 'The request id (a UUID).' }], requestBody: body(h.ref('MigrationPlan')),
        responses: {
          200: h.json(h.ref('Request'), 'Moved; the request after it'), 400: h.error('Bad plan'), 404: h.error('Unknown request'),
          422: h.error('The plan cannot move this request: `details.problems` says why, path by path (CONVEYOR_ERR_MIGRATION_REFUSED)'), ...h.common,
        },
      },
    },
    '/api/pipelines/{id}/migrations': {
      post: {
        summary: 'Start moving a pipeline version\'s requests to another version, in the background, in batches; `dryRun` only checks',
        tags: ['operations'], ...h.secured('operate'), parameters: [{ ...id, description: 'The pipeline id.' }],
        requestBody: body(h.obj({ fromVersion: int, plan: h.ref('MigrationPlan'), filter, dryRun: { type: 'boolean' } }, ['fromVersion', 'plan'])),
        responses: {
          202: h.json(h.ref('Migration'), 'Started'), 400: h.error('Bad body'), 404: h.error('Unknown pipeline'), 409: h.error('A migration of this pipeline is running (CONVEYOR_ERR_MIGRATION_RUNNING)'),
          422: h.error('A version that does not exist'), ...h.common,
        },
      },
    },
    '/api/pipelines/{id}/versions': {
      get: {
        summary: 'The stored versions of a pipeline, which one new requests start on, and how many requests of each version are in each status',
        tags: ['operations'], ...h.secured('read'), parameters: [{ ...id, description: 'The pipeline id.' }],
        responses: { 200: h.json(h.ref('PipelineVersions'), 'The versions'), 404: h.error('Unknown pipeline'), ...h.common },
      },
    },
    '/api/pipelines/{id}/diff': {
      get: {
        summary: 'Two versions compared: steps added, removed, renamed (by `map`) and changed',
        tags: ['operations'], ...h.secured('read'),
        parameters: [{ ...id, description: 'The pipeline id.' }, q('from', 'A version number.', true), q('to', 'A version number.', true), q('map', 'Renamed steps: OLD:NEW pairs, comma-separated.')],
        responses: { 200: h.json(h.ref('VersionDiff'), 'The difference'), 400: h.error('Bad parameter'), 404: h.error('Unknown pipeline or version'), ...h.common },
      },
    },
    '/api/migrations/{id}': {
      get: {
        summary: 'A migration\'s progress: counts migrated / refused / left, and the refusals with their reasons',
        tags: ['operations'], ...h.secured('operate'), parameters: [{ ...id, description: 'The migration id.' }],
        responses: { 200: h.json(h.ref('Migration'), 'The migration'), 404: h.error('Unknown migration'), ...h.common },
      },
    },
  };
  return paths;
}

export function migrationsOpenApi(h: Helpers): { schemas: Record<string, Schema>; paths: Record<string, Record<string, unknown>> } {
  return { schemas: migrationSchemas(h), paths: migrationPaths(h) };
}
