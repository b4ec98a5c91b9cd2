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

export default tseslint.config(
  { ignores: ['node_modules/', 'db/migrations/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  { files: ['core/**'], rules: forbid(['db', 'bot', 'worker', 'portal', 'test']) },
  { files: ['db/**'], rules: forbid(['bot', 'worker', 'portal', 'test']) },
  { files: ['bot/**'], rules: forbid(['worker', 'portal', 'test']) },
  { files: ['worker/**'], rules: forbid(['bot', 'portal', 'test']) },
  { files: ['portal/**'], rules: forbid(['bot', 'worker', 'test']) },
  {
    files: ['**/config.ts', '**/main.ts', 'test/**', 'bench/**'],
    rules: {},
  },
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
