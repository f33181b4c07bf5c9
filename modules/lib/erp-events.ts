/**
 * The ERP (1C) event shapes of seed 001 §19 and their validation. Pure: no I/O, so the
 * validation module and the tests share it.
 *
 * - `product.updated`: `{ event, id?, sku, name, price, stock?: { <warehouse>: qty }, attributes? }`
 * - `price.changed`: `{ event, sku, price }`
 * - `stock.changed`: `{ event, sku, stock: { <warehouse>: qty } }`
 * - `order.created`: `{ event?, order_id, user_id, items: [{ product_id, quantity }], total, status? }`
 *
 * Numbers may come as numeric strings (a CSV import); they are returned as numbers.
 */

export const CATALOG_EVENTS = ['product.updated', 'price.changed', 'stock.changed'] as const;
export type CatalogEventName = (typeof CATALOG_EVENTS)[number];

/** A catalog event, normalised. */
export interface CatalogEvent {
  event: CatalogEventName;
  sku: string;
  name?: string;
  price?: number;
  stock?: Record<string, number>;
  attributes?: Record<string, unknown>;
}

export interface OrderEvent {
  event: 'order.created';
  order_id: string;
  user_id: string;
  items: Array<{ product_id: string; quantity: number }>;
  total: number;
}

export type Validation<T> = { valid: true; event: T } | { valid: false; errors: string[] };

const SKU = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function number(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function stockOf(v: unknown, errors: string[]): Record<string, number> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    errors.push('stock must be an object { warehouse: quantity }');
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const [wh, q] of Object.entries(v)) {
    const n = number(q);
    if (n === undefined || n < 0 || !Number.isInteger(n)) errors.push(`stock.${wh} must be a whole number >= 0`);
    else out[wh] = n;
  }
  return out;
}

/** Validates one catalog event. */
export function validateCatalogEvent(p: Record<string, unknown>): Validation<CatalogEvent> {
  const errors: string[] = [];
  const event = p.event as CatalogEventName;
  if (!CATALOG_EVENTS.includes(event)) errors.push(`event must be one of ${CATALOG_EVENTS.join(', ')} (got ${JSON.stringify(p.event)})`);
  const sku = typeof p.sku === 'number' ? String(p.sku) : p.sku;
  if (typeof sku !== 'string' || !SKU.test(sku)) errors.push('sku must be 1-100 letters, digits, ".", "_" or "-"');
  const out: CatalogEvent = { event, sku: String(sku) };
  if (event === 'product.updated' || event === 'price.changed') {
    const price = number(p.price);
    if (price === undefined || price < 0) errors.push('price must be a number >= 0');
    else out.price = price;
  }
  if (event === 'product.updated') {
    if (typeof p.name !== 'string' || p.name.trim() === '') errors.push('name must be a non-empty string');
    else out.name = p.name;
    if (p.stock !== undefined) out.stock = stockOf(p.stock, errors);
    if (p.attributes !== undefined) {
      if (p.attributes === null || typeof p.attributes !== 'object' || Array.isArray(p.attributes)) errors.push('attributes must be an object');
      else out.attributes = p.attributes as Record<string, unknown>;
    }
  }
  if (event === 'stock.changed') out.stock = stockOf(p.stock, errors);
  return errors.length > 0 ? { valid: false, errors } : { valid: true, event: out };
}

/** Validates one `order.created` event. */
export function validateOrderEvent(p: Record<string, unknown>): Validation<OrderEvent> {
  const errors: string[] = [];
  if (p.event !== undefined && p.event !== 'order.created') errors.push(`event must be "order.created" (got ${JSON.stringify(p.event)})`);
  if (typeof p.order_id !== 'string' || p.order_id === '') errors.push('order_id must be a non-empty string');
  if (typeof p.user_id !== 'string' || p.user_id === '') errors.push('user_id must be a non-empty string');
  const items: OrderEvent['items'] = [];
  if (!Array.isArray(p.items) || p.items.length === 0) errors.push('items must be a non-empty list');
  else {
    p.items.forEach((raw: unknown, i) => {
      const it = (raw ?? {}) as Record<string, unknown>;
      const q = number(it.quantity);
      if (typeof it.product_id !== 'string' || it.product_id === '') errors.push(`items[${i}].product_id must be a non-empty string`);
      if (q === undefined || q <= 0 || !Number.isInteger(q)) errors.push(`items[${i}].quantity must be a whole number > 0`);
      else items.push({ product_id: String(it.product_id), quantity: q });
    });
  }
  const total = number(p.total);
  if (total === undefined || total < 0) errors.push('total must be a number >= 0');
  if (errors.length > 0) return { valid: false, errors };
  return { valid: true, event: { event: 'order.created', order_id: String(p.order_id), user_id: String(p.user_id), items, total: total! } };
}
