// Lint rules, including the layer table of docs/architecture.md: which folder may import which.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** @param {string[]} folders the project folders this layer must not import */
const forbid = (folders) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: folders.map((folder) => ({
        group: [`**/${folder}/*`, `**/${folder}`],
        message: `see docs/architecture.md: this layer must not import ${folder}/`,
      })),
    },
  ],
});

/**
 * @param {string} folder a layer
 * @param {string[]} sideways the folders it must not import (test/ too, except from its tests)
 */
const layer = (folder, sideways) => [
  {
    files: [`${folder}/**`],
    ignores: ['**/*.test.ts', '**/*.test.tsx'],
    rules: forbid([...sideways, 'test']),
  },
  { files: [`${folder}/**/*.test.ts`, `${folder}/**/*.test.tsx`], rules: forbid(sideways) },
];

export default tseslint.config(
  { ignores: ['node_modules/', 'db/migrations/', 'test-output/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      'no-console': 'off',
    },
  },
  // Tests beside the code may use test/support (real services), never another app.
  ...layer('core', ['db', 'bot', 'worker', 'portal']),
  ...layer('db', ['bot', 'worker', 'portal']),
  ...layer('bot', ['worker', 'portal']),
  ...layer('worker', ['bot', 'portal']),
  ...layer('portal', ['bot', 'worker']),
  {
    files: ['core/**', 'db/**', 'bot/**', 'worker/**', 'portal/**'],
    ignores: ['**/config.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration in config.ts only' },
      ],
    },
  },
);
