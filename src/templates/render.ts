/**
 * Step params and setData values are rendered from the request context with liquidjs, a
 * sandboxed template engine: no `eval`, and only own properties are visible, so a template
 * cannot reach a prototype. `{{ secrets.NAME }}` reads the environment at dispatch.
 */
import { Liquid, type Template } from 'liquidjs';
import { getPath, parsePath } from '../conditions';
import { processEnv } from '../config';
import { ConveyorError, ErrorCodes } from '../errors';
import { REDACTED } from '../log/redact';

const liquid = new Liquid({ ownPropertyOnly: true, strictFilters: true, cache: false });
const parsed = new Map<string, Template[]>();
/** `{{ a.b-c.d }}` alone: the value itself is used, keeping its type (number, object...). */
const WHOLE_EXPRESSION = /^\s*\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}\s*$/;
const SECRET_REF = /secrets\.([A-Za-z_][A-Za-z0-9_]*)/g;

/** Where secrets come from: the real environment at dispatch, or a mask for what is stored. */
export type SecretSource = (name: string) => string | undefined;
export const envSecrets: SecretSource = (name) => processEnv()[`CONVEYOR_SECRET_${name}`] ?? processEnv()[name];
export const maskedSecrets: SecretSource = () => REDACTED;

/** Seed 003's `_NULL_`: a setData or assign value that means null. */
export function nullMarkers(value: unknown): unknown {
  if (value === '_NULL_') return null;
  if (Array.isArray(value)) return value.map(nullMarkers);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, nullMarkers(v)]));
  return value;
}

/**
 * The context keys a template reads (`{{ take.data.who }}` reads `take`), for checks at load
 * time. Names the template binds itself (`for`, `assign`) are not listed. Throws with the
 * parser's message when the template does not parse.
 */
export function templateRoots(text: string): string[] {
  const segments = liquid.globalVariableSegmentsSync(liquid.parse(text));
  return [...new Set(segments.map((s) => String(s[0])))];
}

/** True when any string inside `value` holds a template tag. */
export function hasTemplates(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{{') || value.includes('{%');
  if (Array.isArray(value)) return value.some(hasTemplates);
  if (value && typeof value === 'object') return Object.values(value).some(hasTemplates);
  return false;
}

/** Renders every template string inside `value`; other values pass through unchanged. */
export function renderValue(value: unknown, context: Record<string, unknown>, secrets: SecretSource, used?: Set<string>): unknown {
  if (typeof value === 'string') return renderString(value, context, secrets, used);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, context, secrets, used));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderValue(v, context, secrets, used);
    return out;
  }
  return value;
}

function renderString(text: string, context: Record<string, unknown>, secrets: SecretSource, used?: Set<string>): unknown {
  if (!text.includes('{{') && !text.includes('{%')) return text;
  // Object.assign, not `{ ...context, secrets }`: V8 gives every spread copy that gains a key
  // a map of its own (~1 µs and ~360 bytes), and this runs for every template of every step.
  // The context's keys are `payload`, `request`, `vars` and step ids: never `__proto__`.
  const scope: Record<string, unknown> = Object.assign({}, context);
  scope.secrets = secretScope(text, secrets, used);
  const whole = WHOLE_EXPRESSION.exec(text);
  if (whole?.[1]) {
    const v = getPath(scope, parsePath(whole[1]));
    return v === undefined ? '' : v;
  }
  try {
    let templates = parsed.get(text);
    if (!templates) {
      templates = liquid.parse(text);
      if (parsed.size > 5000) parsed.clear();
      parsed.set(text, templates);
    }
    return liquid.renderSync(templates, scope) as string;
  } catch (err) {
    throw new ConveyorError(ErrorCodes.TEMPLATE, `template failed: ${(err as Error).message}`, { status: 500, retryable: false });
  }
}

function secretScope(text: string, secrets: SecretSource, used?: Set<string>): Record<string, string> {
  const scope: Record<string, string> = {};
  for (const m of text.matchAll(SECRET_REF)) {
    const name = m[1] as string;
    const v = secrets(name);
    if (v !== undefined) {
      scope[name] = v;
      used?.add(v);
    }
  }
  return scope;
}
