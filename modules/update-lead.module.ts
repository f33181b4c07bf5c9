/**
 * `update-lead`: records a known person's new request as a lead linked to their contact and,
 * when there is one, their open deal (seed 002's `bitrix-update-lead`).
 *
 * With `payload.leadId` it updates that lead (`crm.lead.update`); otherwise it adds one
 * (`crm.lead.add`). The contact and deal come from `params.contactId`/`params.dealId`, else
 * from step `remember-deal`'s output, else from steps `bitrix-find-contact` and
 * `get-bitrix-deal-by-id`.
 * Output: `{ leadId, linkedDealId }` (`linkedDealId` is `null` without a deal).
 */
import { defineModule } from '../src';
import { callBitrix, payloadOf, stepOutput, str } from './lib/bitrix-client';
import { leadFieldsFromPayload } from './lib/lead-fields';

/** What `update-lead` returns. */
export interface UpdatedLead {
  leadId: string;
  linkedDealId: string | null;
}

/** The `update-lead` module. */
export default defineModule<{ contactId?: unknown; dealId?: unknown }, UpdatedLead>({
  name: 'update-lead',
  description: 'Adds or updates a lead linked to the known contact and deal.',
  async handle({ params, context }, ctx) {
    const payload = payloadOf(context);
    const remembered = stepOutput(context, 'remember-deal');
    const contact = stepOutput(context, 'bitrix-find-contact');
    const deal = stepOutput(context, 'get-bitrix-deal-by-id');
    const contactId = str(params.contactId) ?? str(remembered.contactId) ?? str(contact.ID) ?? str(deal.CONTACT_ID);
    const dealId = str(params.dealId) ?? str(remembered.dealId) ?? str(deal.ID) ?? null;
    const email = str(payload.email) ?? str(contact.EMAIL);

    const fields: Record<string, unknown> = { ...leadFieldsFromPayload(payload) };
    if (contactId) fields.CONTACT_ID = contactId;
    if (dealId) fields.DEAL_ID = dealId;

    const existing = str(payload.leadId);
    if (existing) {
      await callBitrix<boolean>('crm.lead.update', { id: existing, fields }, ctx);
      return { leadId: existing, linkedDealId: dealId };
    }
    const id = await callBitrix<number | string>(
      'crm.lead.add',
      {
        fields: {
          TITLE: `Repeat request from ${email ?? `contact ${contactId ?? 'unknown'}`}`,
          SOURCE_ID: 'WEB',
          STATUS_ID: 'NEW',
          ...(str(contact.NAME) && !fields.NAME ? { NAME: str(contact.NAME) } : {}),
          ...fields,
        },
      },
      ctx,
    );
    return { leadId: String(id), linkedDealId: dealId };
  },
});
