// ESLint flat config.
//
// TypeScript files get typescript-eslint's `recommended` rules plus two type-aware promise
// rules, import cycles are reported, and the architecture's boundaries (DESIGN.md "Layout",
// STYLE.md "Layout says the architecture") are enforced with `no-restricted-imports`:
//   - `src/conditions/**` and the supervisor's decision code are pure: no I/O, no store, no
//     transport, no logger;
//   - TypeORM and the database drivers are imported by `src/store/**` only (checked in src/,
//     modules/ and pipelines/; tests and scripts may use them directly);
//   - winston is imported by `src/log/**` only: code depends on the `Logger` interface;
//   - `process.env` is read in `src/config.ts` and `src/cli/**` only (`no-restricted-properties`);
//   - error codes come from the catalog in `src/errors.ts`, not string literals (`no-restricted-syntax`).
// Files in `src/` have at most 400 lines and functions at most 60. `npm run lint` runs this,
// then `tsc --noEmit`, then `scripts/check-cycles.ts` (no import cycle between the folders of
// `src/`, type imports included; `import-x/no-cycle` below sees cycles between files).
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const TS_FILES = ['**/*.ts', '**/*.cts', '**/*.mts'];
const JS_FILES = ['**/*.js', '**/*.cjs', '**/*.mjs'];

/** Code that must stay a pure function of its inputs. */
const PURE_FILES = [
  'src/conditions/**/*.ts',
  'src/supervisor/decide*.ts',
  'src/supervisor/core/**/*.ts',
];

/** Database access belongs to `src/store/` alone. */
const DATABASE_PACKAGES = ['typeorm', 'mysql2', 'better-sqlite3'];

/**
 * A restriction on packages: the exact names go in `paths` (a bare name in `patterns` would
 * match a folder of that name at any depth, e.g. `../transports/http` for `http`), and their
 * subpaths (`typeorm/…`) in `patterns`.
 */
function restrictPackages(groups) {
  return {
    paths: groups.flatMap(({ names, message }) => names.map((name) => ({ name, message }))),
    patterns: groups.map(({ names, message }) => ({ group: names.map((name) => `${name}/*`), message })),
  };
}

const DATABASE_ONLY_IN_STORE = {
  names: DATABASE_PACKAGES,
  message: 'Only src/store/ may talk to the database; depend on a store interface instead.',
};
const WINSTON_ONLY_IN_LOG = {
  names: ['winston'],
  message: 'Only src/log/ may import winston; depend on the Logger interface of src/log/logger.ts.',
};
const databaseOnlyInStore = restrictPackages([DATABASE_ONLY_IN_STORE]);
const databaseAndWinston = restrictPackages([DATABASE_ONLY_IN_STORE, WINSTON_ONLY_IN_LOG]);
const winstonOnlyInLog = restrictPackages([WINSTON_ONLY_IN_LOG]);

const PURE = 'Pure code (conditions, supervisor decisions)';
const pureRestrictions = restrictPackages([
  { names: DATABASE_PACKAGES, message: `${PURE} must not touch the database.` },
  {
    names: ['bull', 'axios', 'koa', 'winston', 'eventemitter2'],
    message: `${PURE} must not import I/O libraries.`,
  },
  {
    names: ['fs', 'node:fs', 'net', 'node:net', 'http', 'node:http', 'https', 'node:https'],
    message: `${PURE} must not do I/O.`,
  },
]);
pureRestrictions.patterns.push(
  { group: ['@koa/*'], message: `${PURE} must not import I/O libraries.` },
  {
    // Both `../store` (a folder's index) and `../store/anything`.
    group: ['store', 'transports', 'api', 'log'].flatMap((dir) => [`**/${dir}`, `**/${dir}/**`]),
    message:
      `${PURE} must not import the store, transports, API or logger; ` +
      'return a decision and let the shell perform it.',
  },
);

export default defineConfig(
  {
    ignores: ['node_modules/', 'data/', 'test/artifacts/', 'bin/', '.tmp/', 'coverage/'],
  },

  eslint.configs.recommended,
  tseslint.configs.recommended,

  {
    files: TS_FILES,
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.cts', '.mts', '.js', '.cjs', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.cts', '.mts'] },
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
      // The built-in resolver, taught TypeScript's extensions: enough for a project with no
      // `paths` aliases, and no extra resolver package.
      'import-x/resolver-next': [
        createNodeResolver({
          extensions: ['.ts', '.cts', '.mts', '.d.ts', '.js', '.cjs', '.mjs', '.json', '.node'],
          extensionAlias: { '.js': ['.ts', '.js'], '.cjs': ['.cts', '.cjs'], '.mjs': ['.mts', '.mjs'] },
          conditionNames: ['types', 'require', 'node', 'default'],
        }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },

  {
    files: ['src/**/*.ts', 'modules/**/*.ts', 'pipelines/**/*.ts'],
    ignores: ['src/store/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', databaseOnlyInStore],
    },
  },
  // In src/, winston belongs to src/log/ alone (entries for the same rule replace each other,
  // so the database restriction is repeated).
  {
    files: ['src/**/*.ts'],
    ignores: ['src/store/**', 'src/log/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', databaseAndWinston],
    },
  },
  {
    files: ['src/store/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', winstonOnlyInLog],
    },
  },

  // Configuration is compiled once (src/config.ts) and passed down: only that module and the
  // CLI read the environment.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts', 'src/cli/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read settings from the Config that src/config.ts compiles (loadConfig), passed down; only src/config.ts and src/cli/ read process.env.',
        },
      ],
    },
  },

  // Error codes come from the catalog (`ErrorCodes` in src/errors.ts), never a string of their own.
  {
    files: ['src/**/*.ts', 'modules/**/*.ts', 'pipelines/**/*.ts'],
    ignores: ['src/errors.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'Literal[value=/^CONVEYOR_ERR_/], TemplateElement[value.raw=/^CONVEYOR_ERR_/]',
          message: 'Use the catalog: ErrorCodes.X from src/errors.ts (add the code there if it is new).',
        },
      ],
    },
  },

  // Files of at most 400 lines, functions of at most 60 (STYLE.md). Migrations are generated
  // history and stay as written.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/store/migrations/**'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },

  // Later entries win for the same rule, so this one repeats the database restriction.
  {
    files: PURE_FILES,
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', pureRestrictions],
    },
  },

  // Plain JavaScript (config files, the mocha reporter, scripts): not in tsconfig, so no
  // type-aware rules.
  {
    files: JS_FILES,
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        __dirname: 'readonly',
        __filename: 'readonly',
        require: 'readonly',
        module: 'writable',
        exports: 'writable',
      },
    },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);
