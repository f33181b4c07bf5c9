/**
 * `set-default-values`: the defaults of a lead for a person the CRM does not know (seed 002's
 * `bitrix-lead-set-default-values`). It makes no CRM call.
 *
 * Input: `params.email` or `payload.email`; `params.assignedTo` (default `'1'`).
 * Output: `{ TITLE, SOURCE_ID, ASSIGNED_BY_ID, STATUS_ID }`, read by `create-lead`.
 */
import { defineModule } from '../src';
import { payloadOf, str } from './lib/bitrix-client';

/** The lead defaults `set-default-values` returns. */
export interface LeadDefaults {
  TITLE: string;
  SOURCE_ID: string;
  ASSIGNED_BY_ID: string;
  STATUS_ID: string;
}

/** The `set-default-values` module. */
export default defineModule<{ email?: unknown; assignedTo?: unknown }, LeadDefaults>({
  name: 'set-default-values',
  description: 'Default fields for a new lead (title, source, assignee, status).',
  async handle({ params, context }) {
    const email = str(params.email) ?? str(payloadOf(context).email) ?? 'unknown';
    return {
      TITLE: `Lead from ${email}`,
      SOURCE_ID: 'WEB',
      ASSIGNED_BY_ID: str(params.assignedTo) ?? '1',
      STATUS_ID: 'NEW',
    };
  },
});
