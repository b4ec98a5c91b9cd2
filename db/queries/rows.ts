import { getTableColumns, type Table } from 'drizzle-orm';

/** A row as PostgreSQL's to_jsonb gives it: column names as keys, timestamps as ISO strings. */
export type RowJson = Record<string, unknown>;

/** Turns a to_jsonb row of `table` into the object drizzle would select (camelCase, Dates). */
export function fromRowJson<T extends Table>(table: T, row: RowJson): T['$inferSelect'] {
  const result: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = row[column.name];
    result[key] =
      value !== null && value !== undefined && column.columnType === 'PgTimestamp'
        ? new Date(value as string)
        : (value ?? null);
  }
  return result as T['$inferSelect'];
}
