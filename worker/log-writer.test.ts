import { describe, expect, it } from 'vitest';
import { LogWriter } from './log-writer';

describe('LogWriter', () => {
  it('persists chunks in order and decodes characters split across writes', async () => {
    const chunks: [number, string][] = [];
    const writer = new LogWriter(async (seq, text) => void chunks.push([seq, text]), {
      chunkBytes: 8,
    });
    const euro = Buffer.from('€'); // three bytes
    writer.write(Buffer.concat([Buffer.from('price: '), euro.subarray(0, 1)]));
    writer.write(Buffer.concat([euro.subarray(1), Buffer.from('5\nok\n')]));
    await writer.close();
    expect(chunks.map(([seq]) => seq)).toEqual(chunks.map((_, index) => index));
    expect(chunks.map(([, text]) => text).join('')).toBe('price: €5\nok\n');
    expect(writer.tail(1)).toBe('ok');
  });

  it('caps the log with a visible marker', async () => {
    let stored = '';
    const writer = new LogWriter(async (_seq, text) => void (stored += text), { maxBytes: 10 });
    writer.write('0123456789abcdef');
    writer.write('more');
    await writer.close();
    expect(stored.startsWith('0123456789\n[crossdock] log truncated: it passed 10 bytes')).toBe(
      true,
    );
    expect(stored).not.toContain('more');
  });
});
