/**
 * `get-deal`: loads one deal by id (seed 002's `get-bitrix-deal-by-id`).
 *
 * Input: `params.id`, else `context['get-bitrix-deal'].value.ID`.
 * Output: `{ ID, STAGE_ID, TITLE, CONTACT_ID, CLOSED }` with `CLOSED` a boolean, so a
 * condition can test `get-bitrix-deal-by-id.CLOSED eq true`.
 * An unknown deal is a CRM 4xx, hence a non-retryable error.
 */
import { defineModule, NonRetryableError } from '../src';
import { callBitrix, stepOutput, str } from './lib/bitrix-client';

/** What `get-deal` returns. */
export interface LoadedDeal {
  ID: string;
  STAGE_ID: string;
  TITLE: string;
  CONTACT_ID: string | null;
  CLOSED: boolean;
}

interface BitrixDeal {
  ID: string | number;
  STAGE_ID?: string;
  TITLE?: string;
  CONTACT_ID?: string | number | null;
  CLOSED?: string | boolean;
}

/** The `get-deal` module. */
export default defineModule<{ id?: unknown }, LoadedDeal>({
  name: 'get-deal',
  description: 'Loads a deal by the id step get-bitrix-deal found; CLOSED becomes a boolean.',
  async handle({ params, context }, ctx) {
    const found = stepOutput(context, 'get-bitrix-deal').value;
    const foundId = found !== null && typeof found === 'object' ? (found as Record<string, unknown>).ID : undefined;
    const id = str(params.id) ?? str(foundId);
    if (!id) throw new NonRetryableError('get-deal: no deal id in params.id or get-bitrix-deal.value.ID');
    const deal = await callBitrix<BitrixDeal>('crm.deal.get', { id }, ctx);
    if (deal === null || typeof deal !== 'object') throw new Error(`get-deal: CRM answered no deal for ${id}`);
    return {
      ID: String(deal.ID),
      STAGE_ID: String(deal.STAGE_ID ?? ''),
      TITLE: String(deal.TITLE ?? ''),
      CONTACT_ID: deal.CONTACT_ID === undefined || deal.CONTACT_ID === null ? null : String(deal.CONTACT_ID),
      CLOSED: deal.CLOSED === true || deal.CLOSED === 'Y',
    };
  },
});
