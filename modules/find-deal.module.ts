/**
 * `find-deal`: finds the deal a request is about (seed 002's `get-bitrix-deal`).
 *
 * Input, first match wins: `params.dealId`, `payload.dealId` (an explicit deal), else every
 * deal of the contact found by step `bitrix-find-contact` (`context['bitrix-find-contact'].ID`
 * or `params.contactId`), open or closed, of which the most recent one is taken.
 * Output: `{ value: { ID } }`, or `{ value: null }` when there is no deal (or no contact).
 */
import { defineModule } from '../src';
import { callBitrix, payloadOf, stepOutput, str } from './lib/bitrix-client';

/** What `find-deal` returns. */
export interface FoundDeal {
  value: { ID: string } | null;
}

interface BitrixDealRow {
  ID: string | number;
  DATE_CREATE?: string;
}

/** The `find-deal` module. */
export default defineModule<{ dealId?: unknown; contactId?: unknown }, FoundDeal>({
  name: 'find-deal',
  description: "Finds the contact's most recent deal (open or closed), or the payload's dealId.",
  async handle({ params, context }, ctx) {
    const explicit = str(params.dealId) ?? str(payloadOf(context).dealId);
    if (explicit) return { value: { ID: explicit } };

    const contactId = str(params.contactId) ?? str(stepOutput(context, 'bitrix-find-contact').ID);
    if (!contactId) return { value: null };

    // All deals of the contact, open or closed: no CLOSED filter.
    const deals = await callBitrix<BitrixDealRow[]>(
      'crm.deal.list',
      { filter: { CONTACT_ID: contactId }, select: ['ID', 'DATE_CREATE'], order: { DATE_CREATE: 'DESC', ID: 'DESC' } },
      ctx,
    );
    if (!Array.isArray(deals) || deals.length === 0) return { value: null };
    // Do not trust the server's order: take the latest DATE_CREATE, then the highest ID.
    const latest = [...deals].sort((a, b) => {
      const byDate = Date.parse(b.DATE_CREATE ?? '') - Date.parse(a.DATE_CREATE ?? '');
      if (Number.isFinite(byDate) && byDate !== 0) return byDate;
      return Number(b.ID) - Number(a.ID);
    })[0];
    return { value: { ID: String(latest.ID) } };
  },
});
