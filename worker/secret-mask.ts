/** What a secret is replaced with in logs. */
export const MASK = '***';

/** Secrets shorter than this are not masked: masking `1` or `ab` would shred every log. */
const MIN_SECRET_LENGTH = 4;

/**
 * The strings to hide for one secret value: the value itself and its base64 encodings. Base64
 * encodes 3 bytes as 4 characters, so the characters that stand for the secret depend on where
 * it starts within a 3-byte group; for each of the 3 offsets this keeps the characters that
 * depend on the secret's bytes only (as GitHub Actions' runner does; RFC 4648 §4).
 */
export function secretVariants(secret: string): string[] {
  if (secret.length < MIN_SECRET_LENGTH) return [];
  const bytes = Buffer.from(secret);
  const variants = new Set([secret]);
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes, Buffer.alloc(2)])
      .toString('base64')
      .replace(/=+$/, '');
    const first = Math.ceil((offset * 8) / 6);
    const last = Math.floor(((offset + bytes.length) * 8) / 6);
    const variant = encoded.slice(first, last);
    if (variant.length >= MIN_SECRET_LENGTH) variants.add(variant);
  }
  return [...variants].sort((a, b) => b.length - a.length);
}

/**
 * Replaces secret values (and their base64 forms) in a stream of text with MASK, also when a
 * value is split across `push` calls: the shortest tail that could still begin a secret is held
 * back until the next push or `end`.
 */
export class SecretMasker {
  private readonly patterns: string[];
  private held = '';

  constructor(secrets: string[]) {
    this.patterns = [...new Set(secrets.flatMap(secretVariants))].sort(
      (a, b) => b.length - a.length,
    );
  }

  /** Adds text; returns the part that can be shown now, masked. */
  push(text: string): string {
    if (this.patterns.length === 0) return text;
    const masked = this.mask(this.held + text);
    const keep = this.pendingPrefixLength(masked);
    this.held = masked.slice(masked.length - keep);
    return masked.slice(0, masked.length - keep);
  }

  /** Returns what is held back, masked; call when the stream ends. */
  end(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }

  private mask(text: string): string {
    for (const pattern of this.patterns) text = text.split(pattern).join(MASK);
    return text;
  }

  /** Length of the longest tail of `text` that is a proper prefix of some pattern. */
  private pendingPrefixLength(text: string): number {
    const longest = Math.min(text.length, (this.patterns[0]?.length ?? 1) - 1);
    for (let length = longest; length > 0; length--) {
      const tail = text.slice(text.length - length);
      if (this.patterns.some((pattern) => pattern.length > length && pattern.startsWith(tail)))
        return length;
    }
    return 0;
  }
}
