/**
 * `find-contact`: looks a person up in the CRM by e-mail (seed 002's `bitrix-find-contact`).
 *
 * Input: `params.email` (the pipeline passes `'{{ payload.email }}'`), else `context.payload.email`.
 * Output: the contact `{ ID, NAME, EMAIL }`, or `{}` when the CRM knows nobody with that e-mail,
 * so that `bitrix-find-contact.ID` is empty.
 */
import { defineModule, NonRetryableError } from '../src';
import { callBitrix, payloadOf, str } from './lib/bitrix-client';

/** What `find-contact` returns when a contact exists. */
export interface FoundContact {
  ID: string;
  NAME: string;
  EMAIL: string;
}

/** What `find-contact` returns when nobody has the e-mail: `{}`. */
export type NoContact = { [K in keyof FoundContact]?: undefined };

interface BitrixContact {
  ID: string | number;
  NAME?: string;
  LAST_NAME?: string;
  EMAIL?: { VALUE: string }[] | string;
}

/** The `find-contact` module. */
export default defineModule<{ email?: unknown }, FoundContact | NoContact>({
  name: 'find-contact',
  description: 'Finds a CRM contact by e-mail; returns {} when there is none.',
  async handle({ params, context }, ctx) {
    const email = str(params.email) ?? str(payloadOf(context).email);
    if (!email) throw new NonRetryableError('find-contact: no e-mail in params.email or payload.email');
    const contacts = await callBitrix<BitrixContact[]>(
      'crm.contact.list',
      { filter: { EMAIL: email }, select: ['ID', 'NAME', 'LAST_NAME', 'EMAIL'], order: { ID: 'ASC' } },
      ctx,
    );
    if (!Array.isArray(contacts) || contacts.length === 0) {
      ctx.log.info('contact not found', { email });
      return {};
    }
    const c = contacts[0];
    const emails = Array.isArray(c.EMAIL) ? c.EMAIL.map((m) => m.VALUE) : typeof c.EMAIL === 'string' ? [c.EMAIL] : [];
    const matched = emails.find((e) => e.toLowerCase() === email.toLowerCase()) ?? emails[0] ?? email;
    return { ID: String(c.ID), NAME: [c.NAME, c.LAST_NAME].filter(Boolean).join(' '), EMAIL: matched };
  },
});
