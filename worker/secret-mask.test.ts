import { describe, expect, it } from 'vitest';
import { MASK, SecretMasker, secretVariants } from './secret-mask';

const SECRET = 'hunter2-Correct-Horse';

/** Feeds `text` to a masker in pieces cut at `cuts`, and returns all it let out. */
function maskInPieces(secrets: string[], text: string, cuts: number[]): string {
  const masker = new SecretMasker(secrets);
  let out = '';
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    out += masker.push(text.slice(from, cut));
    from = cut;
  }
  return out + masker.end();
}

describe('SecretMasker', () => {
  it('masks a secret wherever the stream is cut, including inside it', () => {
    const text = `token=${SECRET}; again ${SECRET}.\n`;
    const expected = `token=${MASK}; again ${MASK}.\n`;
    for (let cut = 0; cut <= text.length; cut++) {
      expect(maskInPieces([SECRET], text, [cut])).toBe(expected);
    }
    // One character at a time.
    const everyChar = Array.from({ length: text.length }, (_, index) => index);
    expect(maskInPieces([SECRET], text, everyChar)).toBe(expected);
  });

  it.each([0, 1, 2])('masks base64 of the secret preceded by %i byte(s)', (offset) => {
    const encoded = Buffer.from('x'.repeat(offset) + SECRET + '\n').toString('base64');
    const out = maskInPieces([SECRET], `${encoded}\n`, [Math.floor(encoded.length / 2)]);
    expect(out).toContain(MASK);
    // At most the characters that also encode the neighbouring bytes are left.
    expect(out.replace(MASK, '').replace('\n', '').length).toBeLessThanOrEqual(6);
  });

  it('holds back only a tail that could begin a secret, so live output is not delayed', () => {
    const masker = new SecretMasker([SECRET]);
    expect(masker.push('compiling foo.c\n')).toBe('compiling foo.c\n');
    expect(masker.push('value hun')).toBe('value ');
    expect(masker.push('gry\n')).toBe('hungry\n');
    expect(masker.end()).toBe('');
  });

  it('ignores secrets too short to mask without shredding the log', () => {
    expect(secretVariants('abc')).toEqual([]);
    expect(maskInPieces(['abc', ''], 'abc abc', [2])).toBe('abc abc');
  });

  it('computes the base64 forms that stand for the secret alone', () => {
    const variants = secretVariants('abcdef');
    expect(variants).toContain('abcdef');
    expect(variants).toContain('YWJjZGVm'); // base64('abcdef'), aligned
    for (const variant of variants.filter((v) => v !== 'abcdef')) {
      for (const prefix of ['', 'x', 'xy']) {
        const encoded = Buffer.from(prefix + 'abcdef').toString('base64');
        if (encoded.includes(variant)) return;
      }
      throw new Error(`variant ${variant} appears in no encoding`);
    }
  });
});
