/**
 * The condition language's vocabulary: the entries a pipeline writes in `condition`, `when`,
 * `visible` and `redact.when`, and the compiled form the evaluator reads. Plain data.
 */

/** The operations a condition can apply to a field. Prefix any of them with `!|` to negate it. */
export const OPERATIONS = [
  'empty',
  'exists',
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'contains',
  'startsWith',
  'endsWith',
  'regex',
  'between',
  'isString',
  'isNumber',
  'isBoolean',
  'isArray',
  'isObject',
  'isNull',
] as const;

export type BaseOperation = (typeof OPERATIONS)[number];
/** An operation, optionally negated with the seed's `!|` prefix (`'!|empty'`). */
export type Operation = BaseOperation | `!|${BaseOperation}`;

/**
 * One entry of a step's `condition` list. When `operation` holds on `field`, the entry's
 * `result` is the route; if it has `success` instead, those nested entries are tried the same
 * way (depth first). Compare with a literal `value`, or with another field (`valueField`).
 */
export interface ConditionDef<S extends string = string> {
  /** A dotted path into the request context: `payload.email`, `get-bitrix-deal.value`. */
  field: string;
  operation: Operation;
  /** The literal to compare with. */
  value?: unknown;
  /** A dotted path whose value to compare with, instead of `value`. */
  valueField?: string;
  /** Nested entries tried when this entry holds. */
  success?: ConditionDef<S>[];
  /** The route taken when this entry holds. An empty list ends the branch. */
  result?: NoInfer<S>[];
}

/** A condition entry compiled: paths split, negation and operation parsed, `regex` prepared. */
export interface CompiledCondition {
  field: string[];
  negate: boolean;
  operation: BaseOperation;
  value?: unknown;
  valueField?: string[];
  /** Precompiled for `regex`. */
  pattern?: RegExp;
  success?: CompiledCondition[];
  result?: string[];
}
