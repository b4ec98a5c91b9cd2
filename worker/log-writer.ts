import { StringDecoder } from 'node:string_decoder';
import { SecretMasker } from './secret-mask';

/**
 * Collects a job's output and persists it in chunks (`persist(seq, text)`, seq 0, 1, 2, …) at
 * most every `flushMs` or when `chunkBytes` are pending, so a viewer can tail it and what was
 * printed survives the worker. Output past `maxBytes` is dropped after a visible marker. The
 * values of `secrets`, raw or base64-encoded, are masked, also when split across writes.
 */
export class LogWriter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private seq = 0;
  private total = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly kept: string[] = [];
  private readonly masker: SecretMasker;

  constructor(
    private readonly persist: (seq: number, text: string) => Promise<unknown>,
    private readonly options: {
      flushMs?: number;
      chunkBytes?: number;
      maxBytes?: number;
      secrets?: string[];
      onPersistError?: (error: unknown) => void;
    } = {},
  ) {
    this.masker = new SecretMasker(options.secrets ?? []);
  }

  /** Adds output bytes; multi-byte characters split across calls are decoded whole. */
  write(bytes: Buffer | string): void {
    this.append(this.masker.push(typeof bytes === 'string' ? bytes : this.decoder.write(bytes)));
  }

  /** Adds a line written by Crossdock itself (prefixed so it stands out from the script's). */
  note(line: string): void {
    this.append(this.masker.push(`\x1b[36m[crossdock]\x1b[0m ${line}\n`));
  }

  private append(text: string): void {
    if (!text || this.truncated) return;
    const max = this.options.maxBytes ?? 16 * 1024 * 1024;
    const bytes = Buffer.byteLength(text);
    if (this.total + bytes > max) {
      text = Buffer.from(text)
        .subarray(0, Math.max(0, max - this.total))
        .toString('utf8');
      text += `\n[crossdock] log truncated: it passed ${max} bytes; the rest of the output was dropped\n`;
      this.truncated = true;
    }
    this.total += Buffer.byteLength(text);
    this.pending += text;
    this.kept.push(text);
    if (Buffer.byteLength(this.pending) >= (this.options.chunkBytes ?? 64 * 1024)) {
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushMs ?? 500);
    }
  }

  /** Persists what is pending; resolves when every chunk so far is stored. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.pending;
    this.pending = '';
    if (text) {
      const seq = this.seq++;
      this.flushing = this.flushing
        .then(() => this.persist(seq, text))
        .then(
          () => undefined,
          // A chunk that cannot be stored is lost from the live log, but later ones still go.
          (error: unknown) => this.options.onPersistError?.(error),
        );
    }
    return this.flushing;
  }

  /** Flushes the decoder and what is pending; the whole log (as kept) is `text()`. */
  async close(): Promise<void> {
    this.append(this.masker.push(this.decoder.end()) + this.masker.end());
    await this.flush();
  }

  /** Everything written so far (up to the cap). */
  text(): string {
    return this.kept.join('');
  }

  /** The last `count` lines, for a failure report. */
  tail(count: number): string {
    return this.text().trimEnd().split('\n').slice(-count).join('\n');
  }
}
