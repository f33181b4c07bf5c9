/**
 * The condition language: field paths, operations, compilation and routing. Everything here
 * is pure (no I/O), so the supervisor can decide routes in table-driven tests.
 */
export { getPath, parsePath } from './path';
export { evaluateOperation, compareValues, isEmpty } from './operations';
export { compileCondition, parseOperation, isDottedPath, describeValue, NEGATION_PREFIX } from './compile';
export { anyHolds, evaluateCondition, findRoute } from './evaluate';
