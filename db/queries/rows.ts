import { getTableColumns, type Table } from 'drizzle-orm';

/** A row as PostgreSQL's to_jsonb gives it: column names as keys, timestamps as ISO strings. */
export type RowJson = Record<string, unknown>;

/** Each table's columns as [property, column name, is a timestamp], worked out once. */
const fieldsOf = new WeakMap<Table, [string, string, boolean][]>();

/** Turns a to_jsonb row of `table` into the object drizzle would select (camelCase, Dates). */
export function fromRowJson<T extends Table>(table: T, row: RowJson): T['$inferSelect'] {
  let fields = fieldsOf.get(table);
  if (!fields) {
    fields = Object.entries(getTableColumns(table)).map(([key, column]) => [
      key,
      column.name,
      column.columnType === 'PgTimestamp',
    ]);
    fieldsOf.set(table, fields);
  }
  const result: Record<string, unknown> = {};
  for (const [key, name, timestamp] of fields) {
    const value = row[name];
    result[key] =
      timestamp && value !== null && value !== undefined
        ? new Date(value as string)
        : (value ?? null);
  }
  return result as T['$inferSelect'];
}
