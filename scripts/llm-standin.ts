/**
 * A local stand-in for an OpenAI-compatible API, for seed 000's CONTENT_GENERATION ("AI
 * Content Service") and PREVIEW_GENERATION ("AI Image / Preview Generator"). It answers
 * deterministically, so tests can assert what a listing says.
 *
 * Endpoints, in OpenAI's shapes:
 * - `POST /v1/chat/completions` `{ model, messages, response_format? }` → a `chat.completion`
 *   whose message content is JSON `{ title, description, comment }` written from the JSON
 *   object found in the last user message (`{ item: { title, game, ... }, category, ... }`)
 * - `POST /v1/images/generations` `{ prompt, n?, size? }` → `{ created, data: [{ url }] }`
 * - `GET /v1/models` → `{ object: 'list', data: [{ id }] }`
 *
 * When the stand-in has an API key (`opts.apiKey`, or `LLM_STANDIN_KEY`), calls without
 * `Authorization: Bearer <key>` get 401, as the real API does. Errors are OpenAI-shaped:
 * `{ error: { message, type, code } }`.
 *
 * Controls: `POST /_mode` `{ mentionPrice: true }` makes every description mention a price
 * (to prove that CONTENT_GENERATION refuses such content, seed 000 §5.3), plus `GET /_state`,
 * `POST /_reset`, `GET|POST /_faults` (see `standin-kit.ts`).
 *
 * Run directly (`npx tsx scripts/llm-standin.ts`) it listens on `LLM_PORT` (default 8083).
 */
import { createHash } from 'node:crypto';
import { HttpError, runStandinMain, startStandin, type Json, type Standin } from './standin-kit';

export interface LlmCall {
  endpoint: 'chat' | 'images';
  model: string | null;
  /** Whether the right bearer key came with the call. */
  authorized: boolean;
  /** The last user message, or the image prompt. */
  prompt: string;
}

export interface LlmState {
  calls: Record<string, number>;
  requests: LlmCall[];
  mode: { mentionPrice: boolean };
}

/** The models `GET /v1/models` lists; any other name is accepted too. */
export const LLM_MODELS = ['conveyor-standin-1', 'conveyor-standin-image-1'];

/** Finds the first JSON object inside a text (the module sends its facts as JSON). */
function factsOf(text: string): Json {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end <= start) return {};
  try {
    const v: unknown = JSON.parse(text.slice(start, end + 1));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  } catch {
    return {};
  }
}

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : fallback;
}

/** The listing text the stand-in "writes" for a set of facts. */
export function writeListing(facts: Json, mentionPrice: boolean): { title: string; description: string; comment: string } {
  const item = (facts.item && typeof facts.item === 'object' ? facts.item : {}) as Json;
  const category = (facts.category && typeof facts.category === 'object' ? facts.category : {}) as Json;
  const name = str(item.title, 'Товар');
  const game = str(item.game, 'игры');
  const title = `${name} — ${game}`.slice(0, 80);
  const extras = Array.isArray(item.features) ? item.features.map(String).slice(0, 5) : [];
  let description = `${name} для ${game}. Категория: ${str(category.title, 'прочее')}.`;
  if (extras.length > 0) description += ` Особенности: ${extras.join(', ')}.`;
  description += ' Передача сразу после оплаты.';
  if (mentionPrice) description += ' Цена всего 999 ₽!';
  return { title, description, comment: 'Спасибо за покупку! Напишите, если понадобится помощь.' };
}

/** Starts the LLM stand-in. `port: 0` picks a free port. */
export async function startLlmStandin(opts: { port?: number; host?: string; apiKey?: string } = {}): Promise<Standin<LlmState>> {
  const apiKey = opts.apiKey ?? process.env.LLM_STANDIN_KEY ?? null;
  const authorized = (headers: Record<string, unknown>): boolean => !apiKey || headers.authorization === `Bearer ${apiKey}`;
  let n = 0;
  return startStandin<LlmState>({
    host: opts.host ?? process.env.LLM_HOST,
    port: opts.port ?? Number(process.env.LLM_PORT ?? 8083),
    initial: () => ({ calls: {}, requests: [], mode: { mentionPrice: false } }),
    errorBody: (e) => ({ error: { message: e.message, type: e.status >= 500 ? 'server_error' : 'invalid_request_error', code: e.code } }),
    routes: (state) => ({
      'GET /v1/models': () => ({ object: 'list', data: LLM_MODELS.map((id) => ({ id, object: 'model', owned_by: 'conveyor' })) }),
      'POST /v1/chat/completions': ({ body, headers }) => {
        const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
        const user = [...messages].reverse().find((m) => m.role === 'user');
        const prompt = typeof user?.content === 'string' ? user.content : '';
        const ok = authorized(headers);
        state().requests.push({ endpoint: 'chat', model: typeof body.model === 'string' ? body.model : null, authorized: ok, prompt });
        if (!ok) throw new HttpError(401, 'invalid_api_key', 'Incorrect API key provided');
        if (typeof body.model !== 'string' || body.model === '') throw new HttpError(400, 'missing_model', 'you must provide a model parameter');
        if (!user) throw new HttpError(400, 'missing_messages', 'messages must contain a user message');
        const content = JSON.stringify(writeListing(factsOf(prompt), state().mode.mentionPrice));
        return {
          id: `chatcmpl-${++n}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: prompt.length, completion_tokens: content.length, total_tokens: prompt.length + content.length },
        };
      },
      'POST /v1/images/generations': ({ body, headers }) => {
        const prompt = typeof body.prompt === 'string' ? body.prompt : '';
        const ok = authorized(headers);
        state().requests.push({ endpoint: 'images', model: typeof body.model === 'string' ? body.model : null, authorized: ok, prompt });
        if (!ok) throw new HttpError(401, 'invalid_api_key', 'Incorrect API key provided');
        if (prompt === '') throw new HttpError(400, 'missing_prompt', 'prompt is required');
        const count = Math.min(Math.max(Number(body.n ?? 1) || 1, 1), 4);
        const hash = createHash('sha256').update(prompt).digest('hex').slice(0, 12);
        return { created: Math.floor(Date.now() / 1000), data: Array.from({ length: count }, (_v, i) => ({ url: `https://images.standin.local/${hash}-${i + 1}.png` })) };
      },
      'POST /_mode': ({ body }) => {
        state().mode.mentionPrice = body.mentionPrice === true;
        return { ok: true, mode: state().mode };
      },
    }),
  });
}

if (require.main === module) {
  runStandinMain('LLM stand-in', () => startLlmStandin(), (url) => `set LLM_BASE_URL=${url}/v1`);
}
