import { createHash } from 'node:crypto';
import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { users, userTokens } from '../schema';

export type User = typeof users.$inferSelect;
export type UserToken = typeof userTokens.$inferSelect;
export type UserTokenKind = UserToken['kind'];

/** Hex SHA-256 of a token's secret: what the database keeps instead of the secret. */
export function hashTokenSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Records a sign-in of the person the identity provider `issuer` calls `subject`: inserts the
 * user, or updates their login and email (they may have changed at the provider). Returns the row.
 */
export async function upsertUser(
  db: Database,
  identity: { issuer: string; subject: string; login: string; email: string | undefined },
): Promise<User> {
  const [row] = await db
    .insert(users)
    .values({ ...identity, email: identity.email ?? null, lastSeenAt: new Date() })
    .onConflictDoUpdate({
      target: [users.issuer, users.subject],
      set: { login: identity.login, email: identity.email ?? null, lastSeenAt: new Date() },
    })
    .returning();
  return row!;
}

/**
 * Stores a new token of `userId` whose secret hashes to `secretHash` (hashTokenSecret); it is
 * valid until `expiresAt` (null: until revoked). Returns the row.
 */
export async function createUserToken(
  db: Database,
  token: {
    userId: number;
    kind: UserTokenKind;
    name: string;
    secretHash: string;
    expiresAt: Date | null;
  },
): Promise<UserToken> {
  const [row] = await db.insert(userTokens).values(token).returning();
  return row!;
}

/** How often a token's `last_used_at` is written at most: a busy script must not write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * The user and token of the secret whose hash is `secretHash`, if that token is of `kind`, not
 * revoked and not expired at `now`; else undefined. Notes the use in `last_used_at` (at most once
 * a minute per token).
 */
export async function findUserByToken(
  db: Database,
  secretHash: string,
  kind: UserTokenKind,
  now = new Date(),
): Promise<{ user: User; token: UserToken } | undefined> {
  const [row] = await db
    .select({ user: users, token: userTokens })
    .from(userTokens)
    .innerJoin(users, eq(users.id, userTokens.userId))
    .where(
      and(
        eq(userTokens.secretHash, secretHash),
        eq(userTokens.kind, kind),
        isNull(userTokens.revokedAt),
        or(isNull(userTokens.expiresAt), gt(userTokens.expiresAt, now)),
      ),
    );
  if (!row) return undefined;
  const lastUsed = row.token.lastUsedAt?.getTime() ?? 0;
  if (now.getTime() - lastUsed >= LAST_USED_RESOLUTION_MS) {
    await db.update(userTokens).set({ lastUsedAt: now }).where(eq(userTokens.id, row.token.id));
  }
  return row;
}

/** The API tokens of `userId`, newest first, revoked ones included (to show when they were revoked). */
export async function listApiTokens(db: Database, userId: number): Promise<UserToken[]> {
  return db
    .select()
    .from(userTokens)
    .where(and(eq(userTokens.userId, userId), eq(userTokens.kind, 'api')))
    .orderBy(desc(userTokens.id));
}

/**
 * Revokes token `tokenId` of `userId` (only their own; a session's token when it signs out).
 * Returns false when they have no such token or it was revoked already.
 */
export async function revokeUserToken(
  db: Database,
  userId: number,
  tokenId: number,
): Promise<boolean> {
  const rows = await db
    .update(userTokens)
    .set({ revokedAt: sql`now()` })
    .where(
      and(eq(userTokens.id, tokenId), eq(userTokens.userId, userId), isNull(userTokens.revokedAt)),
    )
    .returning({ id: userTokens.id });
  return rows.length > 0;
}
