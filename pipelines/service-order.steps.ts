/**
 * The step builders of `service-order.pipeline.ts` (seed 003): its notifications (`push`,
 * `sms`, `email`, chat messages), payments and calls to the services platform.
 */
import type { ConditionDef, ModuleStepDef } from '../src';

/** The seed's chat field: the message a user writes. */
export const MESSAGE = 'field1416182395';

export interface Texts {
  title?: string;
  body?: string;
  message?: string;
  subject?: string;
  text?: string;
}

/** A `push` / `sms` / `email` step of the seed. */
export function notify<S extends string>(channel: 'push' | 'sms' | 'email', texts: Texts, recipients: string[], next: S[], executorUserId?: string): ModuleStepDef<S> {
  return {
    subsystem: 'notify',
    params: { channel, ...texts, recipients, order: '{{ order }}', ...(executorUserId ? { executorUserId } : {}), apiKey: '{{ secrets.NOTIFY_API_KEY }}' },
    next,
  };
}

export const push = <S extends string>(title: string, body: string, recipients: string[], next: S[], executorUserId?: string): ModuleStepDef<S> =>
  notify('push', { title, body }, recipients, next, executorUserId);

/** A chat action's push: the message goes to `recipients`, and the order stays in `state`. */
export const chat = <S extends string>(state: S, author: string, recipients: string[], executorUserId?: string): ModuleStepDef<S> =>
  push(`Сообщение от ${author} к заказу #{{ order.code }}`, `{{ ${state}.data['${MESSAGE}'] }}`, recipients, [state], executorUserId);

/** A `pay` / `confirmPay` / `voidPay` step. */
export function payment<S extends string>(operation: 'pay' | 'confirm' | 'void', route: { next?: S[]; condition?: ConditionDef<S>[] }): ModuleStepDef<S> {
  const params = operation === 'pay'
    ? { operation, amount: '{{ order.sum }}', currency: 'RUB', invoiceId: '{{ order.code }}', accountId: '{{ order.customerUser.id }}', description: 'Заказ #{{ order.code }}: {{ order.service.title }}' }
    : { operation, transactionId: '{{ state1-pay.transactionId }}' };
  return { subsystem: 'payment', params, ...route };
}

/** `vars.payed` as the customer reads it. */
export const PAYED = '{% if vars.payed %}да{% else %}нет{% endif %}';

/** The customer's SMS at the end of an order: its status and payment now. */
export const outcomeSms = <S extends string>(next: S[]): ModuleStepDef<S> =>
  notify('sms', { message: `Заказ #{{ order.code }}: {{ vars.status.title }}. Оплачен: ${PAYED}.` }, ['customer'], next);

/** A call to the services platform. */
export const platform = <S extends string>(params: Record<string, unknown>, next: S[]): ModuleStepDef<S> => ({
  subsystem: 'platform',
  params: { ...params, order: '{{ order.code }}', apiKey: '{{ secrets.PLATFORM_API_KEY }}' },
  next,
});
