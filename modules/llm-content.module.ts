/**
 * `llm-content`: seed 000 §5.3 CONTENT_GENERATION through an OpenAI-compatible chat API (see
 * `lib/llm-client.ts` for `LLM_BASE_URL` and `LLM_MODEL`). It writes the listing's title,
 * description and a comment for the buyer.
 *
 * §5.3 says the content has no price and publishes nothing. This module only writes text, and
 * refuses text that mentions a price: that fails the step for good, so the run goes to
 * ERROR_STOP instead of publishing a price nobody calculated.
 *
 * Params: `item`, `category` (from DATA_COLLECTION), `apiKey` (`{{ secrets.LLM_API_KEY }}`),
 * `instructions` (optional extra wishes, e.g. set by an operator on resume).
 * Output: `{ title, description, comment, model }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { obj, str } from './lib/http-json';
import { chat } from './lib/llm-client';

export interface ListingContent {
  title: string;
  description: string;
  comment: string;
  model: string;
}

/** A number followed by a currency, or the words "price", "цена" (its forms), "стоимость". */
const PRICE = /\d[\d\s.,]*\s*(₽|руб|rub|\$|usd|€|eur)|цен[аеуыой]|стоимост|\bprice/i;

const SYSTEM = [
  'Ты пишешь карточку товара для маркетплейса игровых предметов.',
  'Ответь JSON-объектом {"title", "description", "comment"}: название до 80 символов, описание, комментарий покупателю.',
  'Не упоминай цену и не обещай скидок.',
].join(' ');

export default defineModule<Record<string, unknown>, ListingContent>({
  name: 'llm-content',
  description: 'CONTENT_GENERATION: title, description and comment from an OpenAI-compatible model; never a price.',
  timeout: '60s',
  retry: { attempts: 3, backoff: '2s' },
  async handle({ params }, ctx) {
    const facts = { item: obj(params.item), category: obj(params.category), instructions: str(params.instructions) ?? null };
    const { content, model } = await chat([{ role: 'system', content: SYSTEM }, { role: 'user', content: JSON.stringify(facts) }], str(params.apiKey), ctx.signal);
    let parsed: Record<string, unknown>;
    try {
      parsed = obj(JSON.parse(content));
    } catch {
      throw new Error('the model did not answer JSON');
    }
    const title = str(parsed.title);
    const description = str(parsed.description);
    const comment = str(parsed.comment) ?? '';
    if (!title || !description) throw new Error('the model left out the title or the description');
    const leak = [title, description, comment].map((t) => PRICE.exec(t)?.[0]).find(Boolean);
    if (leak) throw new NonRetryableError(`the generated content mentions a price ("${leak.trim()}"); seed 000 §5.3 forbids it`, { title });
    return { title: title.slice(0, 80), description, comment, model };
  },
});
