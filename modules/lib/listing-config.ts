/**
 * The configuration INIT loads for the marketplace listing workflow (seed 000 §5.1: limits,
 * categories, who may run it). It comes from the JSON file named by `LISTING_CONFIG`, or from
 * the defaults below. The price limits come only from here: `limits` for every category,
 * and `categoryLimits` to set some keys per category. An item's own `limits` (in the payload)
 * may make them stricter, never looser (`pricing-rules.ts` `itemLimits`), and the `pricing`
 * module refuses limits looser than these whatever params it is given.
 *
 * ```json
 * { "limits": { "min": 100, "max": 10000, "maxStepPct": 20, "nearLimitPct": 10 },
 *   "categoryLimits": { "accounts": { "max": 50000 } },
 *   "categories": ["skins", "accounts", "currency"],
 *   "admins": ["anna"] }
 * ```
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS, type PriceLimitsDef } from './pricing-rules';

export interface ListingConfig {
  limits: PriceLimitsDef;
  /** Keys of `limits` set per category. */
  categoryLimits: Record<string, Partial<PriceLimitsDef>>;
  /** Categories the workflow may list in; empty: any. */
  categories: string[];
  /** Administrators who may start the workflow (`payload.requestedBy`); empty: anyone with the submit role. */
  admins: string[];
  /** Where the configuration came from, for the step log. */
  source: string;
}

export const DEFAULT_LISTING_CONFIG: ListingConfig = {
  limits: DEFAULT_LIMITS,
  categoryLimits: {},
  categories: ['skins', 'accounts', 'currency'],
  admins: [],
  source: 'defaults',
};

/** Reads the configuration; throws `Error` when the file is unreadable or malformed. */
export function loadListingConfig(env: NodeJS.ProcessEnv = process.env): ListingConfig {
  const file = env.LISTING_CONFIG;
  if (!file) return structuredClone(DEFAULT_LISTING_CONFIG);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<ListingConfig>;
  const list = (v: unknown, name: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`${file}: "${name}" must be a list of strings`);
    return v;
  };
  const categoryLimits = raw.categoryLimits ?? {};
  if (typeof categoryLimits !== 'object' || Array.isArray(categoryLimits) || Object.values(categoryLimits).some((l) => !l || typeof l !== 'object' || Array.isArray(l))) {
    throw new Error(`${file}: "categoryLimits" must map a category to its limits`);
  }
  return {
    limits: { ...DEFAULT_LIMITS, ...(raw.limits ?? {}) },
    categoryLimits,
    categories: list(raw.categories, 'categories'),
    admins: list(raw.admins, 'admins'),
    source: file,
  };
}

/** The configured limits of one category: `limits`, with that category's `categoryLimits` keys. */
export function configuredLimits(config: ListingConfig, categoryId: string | undefined): PriceLimitsDef {
  return { ...config.limits, ...(categoryId && Object.hasOwn(config.categoryLimits, categoryId) ? config.categoryLimits[categoryId] : {}) };
}

/** Base URL of the marketplace API (the stand-in by default). */
export const MARKETPLACE_URL_ENV = 'MARKETPLACE_BASE_URL';
export const MARKETPLACE_URL_DEFAULT = 'http://127.0.0.1:8082';
