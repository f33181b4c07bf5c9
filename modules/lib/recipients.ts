/**
 * Who a seed 003 notification goes to. A recipient is a role (`customer`, `executor`,
 * `courier`, `moderator`), a user id, a phone number (`+7…`) or an e-mail address; the seed:
 * "if the order has an executor, the notification goes to that executor, otherwise to every
 * executor of the provider with access to the service". The same holds for the other roles.
 *
 * Users are read from the order (`customerUser`, and the provider's `executors`, `couriers`,
 * `moderators`). Pure: no I/O.
 */

export interface OrderUser {
  id: string;
  title?: string;
  phone_number?: string;
  email?: string;
}

/** The parts of a seed 003 order that name people. */
export interface OrderPeople {
  customerUser?: OrderUser | null;
  executors?: OrderUser[];
  couriers?: OrderUser[];
  moderators?: OrderUser[];
}

export type Channel = 'push' | 'sms' | 'email';

/** The roles seed 003 defines. */
export const ROLES = ['customer', 'executor', 'courier', 'moderator'] as const;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[\d\s()-]{7,}$/;
const digits = (s: string): string => s.replace(/\D/g, '');

function usersOf(order: OrderPeople): OrderUser[] {
  return [order.customerUser ?? undefined, ...(order.executors ?? []), ...(order.couriers ?? []), ...(order.moderators ?? [])].filter((u): u is OrderUser => Boolean(u?.id));
}

/** The users a role means now. `executorUserId` is the order's assigned executor, if any. */
function usersOfRole(role: string, order: OrderPeople, executorUserId: string | null): OrderUser[] {
  switch (role) {
    case 'customer':
      return order.customerUser ? [order.customerUser] : [];
    case 'executor': {
      if (!executorUserId) return order.executors ?? [];
      return [(order.executors ?? []).find((u) => u.id === executorUserId) ?? { id: executorUserId }];
    }
    case 'courier':
      return order.couriers ?? [];
    case 'moderator':
      return order.moderators ?? [];
    default:
      return [];
  }
}

/**
 * The addresses for a channel: user ids for push, phone numbers for SMS, e-mail addresses for
 * e-mail. People without an address on that channel are left out, and so are duplicates.
 */
export function resolveRecipients(recipients: string[], channel: Channel, order: OrderPeople, executorUserId: string | null): string[] {
  const out = new Set<string>();
  const all = usersOf(order);
  const addUser = (u: OrderUser): void => {
    const address = channel === 'push' ? u.id : channel === 'sms' ? u.phone_number : u.email;
    if (address) out.add(address);
  };
  for (const r of recipients) {
    if ((ROLES as readonly string[]).includes(r)) {
      usersOfRole(r, order, executorUserId).forEach(addUser);
    } else if (EMAIL.test(r)) {
      const u = all.find((x) => x.email === r);
      if (u) addUser(u);
      else if (channel === 'email') out.add(r);
    } else if (PHONE.test(r)) {
      const u = all.find((x) => x.phone_number && digits(x.phone_number) === digits(r));
      if (u) addUser(u);
      else if (channel === 'sms') out.add(r);
    } else {
      addUser(all.find((x) => x.id === r) ?? { id: r });
    }
  }
  return [...out];
}
