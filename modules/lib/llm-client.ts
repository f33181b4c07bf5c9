/**
 * A small client for an OpenAI-compatible API (chat completions and image generation), used
 * by CONTENT_GENERATION and PREVIEW_GENERATION (seed 000 §5.3–5.4). The base URL and the
 * models come from the environment, so any compatible server works:
 *
 * | env var | meaning | default |
 * |---|---|---|
 * | `LLM_BASE_URL` | the API base, up to and including `/v1` | `http://127.0.0.1:8083/v1` (the stand-in) |
 * | `LLM_MODEL` | the chat model | `conveyor-standin-1` |
 * | `LLM_IMAGE_MODEL` | the image model | `conveyor-standin-image-1` |
 *
 * The API key is a step param (`'{{ secrets.LLM_API_KEY }}'`), so it is resolved at dispatch
 * and never stored.
 */
import { baseUrl, callJson } from './http-json';

export function llmBaseUrl(): string {
  return baseUrl('LLM_BASE_URL', 'http://127.0.0.1:8083/v1');
}

export function llmModel(kind: 'chat' | 'image'): string {
  return kind === 'chat' ? process.env.LLM_MODEL || 'conveyor-standin-1' : process.env.LLM_IMAGE_MODEL || 'conveyor-standin-image-1';
}

function auth(apiKey: string | undefined): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** One chat completion; returns the assistant's text. */
export async function chat(messages: Array<{ role: 'system' | 'user'; content: string }>, apiKey: string | undefined, signal: AbortSignal): Promise<{ content: string; model: string }> {
  const res = await callJson<{ model?: string; choices?: Array<{ message?: { content?: unknown } }> }>(`${llmBaseUrl()}/chat/completions`, {
    service: 'LLM',
    body: { model: llmModel('chat'), messages, temperature: 0.3, response_format: { type: 'json_object' } },
    headers: auth(apiKey),
    signal,
  });
  const content = res.choices?.[0]?.message?.content;
  if (typeof content !== 'string' || content === '') throw new Error('LLM answered without message content');
  return { content, model: res.model ?? llmModel('chat') };
}

/** Generates `n` images for a prompt; returns their URLs. */
export async function generateImages(prompt: string, n: number, apiKey: string | undefined, signal: AbortSignal): Promise<string[]> {
  const res = await callJson<{ data?: Array<{ url?: unknown }> }>(`${llmBaseUrl()}/images/generations`, {
    service: 'LLM',
    body: { model: llmModel('image'), prompt, n, size: '1024x1024' },
    headers: auth(apiKey),
    signal,
  });
  const urls = (res.data ?? []).map((d) => d.url).filter((u): u is string => typeof u === 'string' && u !== '');
  if (urls.length === 0) throw new Error('the image API answered no image');
  return urls;
}
