/**
 * `create-lead`: adds a lead to the CRM (seed 002's `bitrix-create-lead`).
 *
 * Fields: the payload's `name`, `lastName`, `email`, `phone`, `comment`, then the defaults of
 * step `bitrix-lead-set-default-values` when it ran (else the same defaults computed here),
 * then `CONTACT_ID` when step `bitrix-find-contact` found a contact.
 * Output: `{ leadId }`.
 */
import { defineModule } from '../src';
import { callBitrix, payloadOf, stepOutput, str } from './lib/bitrix-client';
import { leadFieldsFromPayload } from './lib/lead-fields';

/** What `create-lead` returns. */
export interface CreatedLead {
  leadId: string;
}

/** The `create-lead` module. */
export default defineModule<Record<string, unknown>, CreatedLead>({
  name: 'create-lead',
  description: 'Creates a CRM lead from the payload and the default values.',
  async handle({ context }, ctx) {
    const payload = payloadOf(context);
    const email = str(payload.email);
    const defaults = stepOutput(context, 'bitrix-lead-set-default-values');
    const fields: Record<string, unknown> = {
      TITLE: `Lead from ${email ?? 'unknown'}`,
      SOURCE_ID: 'WEB',
      ASSIGNED_BY_ID: '1',
      STATUS_ID: 'NEW',
      ...defaults,
      ...leadFieldsFromPayload(payload),
    };
    const contactId = str(stepOutput(context, 'bitrix-find-contact').ID);
    if (contactId) fields.CONTACT_ID = contactId;
    const id = await callBitrix<number | string>('crm.lead.add', { fields }, ctx);
    return { leadId: String(id) };
  },
});
