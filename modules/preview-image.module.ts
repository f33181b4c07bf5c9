/**
 * `preview-image`: seed 000 §5.4 PREVIEW_GENERATION through an OpenAI-compatible image API
 * (see `lib/llm-client.ts`). It makes one or more preview images of the listing.
 *
 * Params: `title`, `game`, `count` (1–4, default 1), `apiKey` (`{{ secrets.LLM_API_KEY }}`).
 * Output: `{ images: [url, ...] }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { num, str } from './lib/http-json';
import { generateImages } from './lib/llm-client';

export default defineModule<Record<string, unknown>, { images: string[] }>({
  name: 'preview-image',
  description: 'PREVIEW_GENERATION: preview images of the listing from an OpenAI-compatible image model.',
  timeout: '120s',
  retry: { attempts: 3, backoff: '2s' },
  async handle({ params }, ctx) {
    const title = str(params.title);
    if (!title) throw new NonRetryableError('no title to draw a preview of');
    const count = Math.min(Math.max(Math.trunc(num(params.count) ?? 1), 1), 4);
    const prompt = `Превью товара для маркетплейса: «${title}»${str(params.game) ? `, игра ${String(params.game)}` : ''}. Без текста и без цены.`;
    return { images: await generateImages(prompt, count, str(params.apiKey), ctx.signal) };
  },
});
