/**
 * `hello`: the smallest possible module, used by `pipelines/hello.pipeline.json`.
 * Output: `{ greeting: 'Hello, <params.name>' }`, or `'Hello, world'` when the name is absent
 * or empty (a template over a missing field renders as an empty string).
 */
import { defineModule } from '../src';

/** The `hello` module. */
export default defineModule<{ name?: unknown }, { greeting: string }>({
  name: 'hello',
  description: 'Greets params.name.',
  async handle({ params }) {
    const name = typeof params.name === 'string' && params.name.trim() !== '' ? params.name : 'world';
    return { greeting: `Hello, ${name}` };
  },
});
