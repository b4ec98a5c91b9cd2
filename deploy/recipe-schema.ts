// Writes the recipe's JSON Schema to docs/crossdock.schema.json (`npm run schema`); a test fails
// when the committed file and core/recipe.ts disagree.
import { writeFileSync } from 'node:fs';
import { recipeJsonSchema } from '../core/recipe';

export const SCHEMA_FILE = new URL('../docs/crossdock.schema.json', import.meta.url);

writeFileSync(SCHEMA_FILE, `${JSON.stringify(recipeJsonSchema(), null, 2)}\n`);
console.log(`wrote ${SCHEMA_FILE.pathname}`);
