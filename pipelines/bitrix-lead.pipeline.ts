/**
 * `bitrix-lead`: seed 002's example, a lead from a web form routed through the Bitrix24 CRM.
 * The `get-bitrix-deal` step is the seed's config entry word for word (its `prev` names the
 * real previous step instead of the seed's placeholder `'prev-step'`).
 *
 * The four routes (payloads in `scripts/crm-standin.ts` → `BRANCH_PAYLOADS`):
 * - A, a new person: find-contact → get-bitrix-deal → set-default-values → create-lead.
 * - B, a known contact without a deal: find-contact → get-bitrix-deal → remember-deal → update-lead.
 *   (The first condition holds but its nested entry does not, the second does not hold, so
 *   `next` applies.)
 * - C, the latest deal is open: … → get-bitrix-deal → get-bitrix-deal-by-id → remember-deal → update-lead.
 * - D, the latest deal is closed: … → get-bitrix-deal → get-bitrix-deal-by-id → create-lead.
 */
import { definePipeline } from '../src';

export default definePipeline({
  id: 'bitrix-lead',
  description: 'A web lead, matched against Bitrix24 contacts and deals (seed 002).',
  start: 'bitrix-find-contact',
  // The seed buffers requests "10 a minute": that is `intake: { rate: { max: 10, per: '1m' } }`.
  // The example starts requests at once so that demos and tests do not wait.
  intake: { mode: 'immediate' },
  // CRM calls are retryable (5xx, timeouts); a CRM 4xx is a NonRetryableError and stops at once.
  defaults: { timeout: '10s', retry: { attempts: 3, backoff: '200ms', factor: 2, maxDelay: '2s' } },
  steps: {
    'bitrix-find-contact': {
      description: 'Find the CRM contact by the submitted e-mail ({} when there is none).',
      subsystem: 'find-contact',
      params: { email: '{{ payload.email }}' },
      next: ['get-bitrix-deal'],
    },
    'get-bitrix-deal': {
      description: "Find the contact's most recent deal, open or closed ({ value: null } when none).",
      subsystem: 'find-deal',
      next: ['remember-deal'],
      prev: ['bitrix-find-contact'],
      condition: [
        {
          field: 'get-bitrix-deal.value',
          operation: 'empty',
          success: [
            {
              field: 'bitrix-find-contact.ID',
              operation: 'empty',
              result: ['bitrix-lead-set-default-values'],
            },
          ],
        },
        {
          field: 'get-bitrix-deal.value',
          operation: '!|empty',
          result: ['get-bitrix-deal-by-id'],
        },
      ],
    },
    'bitrix-lead-set-default-values': {
      description: 'Nobody known: compute the default fields of a new lead.',
      subsystem: 'set-default-values',
      prev: ['get-bitrix-deal'],
      next: ['bitrix-create-lead'],
    },
    'get-bitrix-deal-by-id': {
      description: 'Load the deal found; a closed deal means a new lead, an open one is remembered.',
      subsystem: 'get-deal',
      prev: ['get-bitrix-deal'],
      next: ['remember-deal'],
      condition: [{ field: 'get-bitrix-deal-by-id.CLOSED', operation: 'eq', value: true, result: ['bitrix-create-lead'] }],
    },
    'remember-deal': {
      description: 'Remember the contact and its open deal (a remote module over HTTP).',
      subsystem: 'remember-deal',
      prev: ['get-bitrix-deal', 'get-bitrix-deal-by-id'],
      next: ['bitrix-update-lead'],
    },
    'bitrix-create-lead': {
      description: 'Create a new lead (a new person, or a contact whose last deal is closed). Ends the request.',
      subsystem: 'create-lead',
      prev: ['bitrix-lead-set-default-values', 'get-bitrix-deal-by-id'],
    },
    'bitrix-update-lead': {
      description: 'Record the request as a lead linked to the contact and open deal. Ends the request.',
      subsystem: 'update-lead',
      prev: ['remember-deal'],
    },
  },
});
