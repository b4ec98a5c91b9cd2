import type { Completion, Fence, JobOutcome } from '../db/queries/jobs';

interface Waiting {
  completion: Completion;
  resolve(recorded: boolean): void;
  reject(error: unknown): void;
}

/** A statement recording outcomes took longer than the batcher's timeout. */
export class CompletionTimeoutError extends Error {}

/**
 * Records the outcomes of a worker's jobs, several in one statement when they come together, as
 * a database's group commit does: an outcome goes at once when none is being recorded; those that
 * arrive meanwhile go together (up to `maxBatch`) when that statement returns (a second statement
 * in flight was measured slower: smaller batches, more statements). So no outcome waits
 * for a timer, and a worker with many short jobs makes one round trip and one commit for many.
 */
export class CompletionBatcher {
  private waiting: Waiting[] = [];
  private recording = false;

  /**
   * @param record records a batch and says, in order, which were recorded: completeJobs
   *   (db/queries/jobs.ts) bound to the worker's database.
   * @param options.maxBatch the most outcomes in one statement.
   * @param options.timeoutMs how long a statement may take before its outcomes are rejected (the
   *   callers try again, on another connection if this one is stuck), so that one lost
   *   connection does not hold up every later outcome.
   */
  constructor(
    private readonly record: (completions: Completion[]) => Promise<boolean[]>,
    private readonly options: { maxBatch?: number; timeoutMs?: number } = {},
  ) {}

  /**
   * Records `outcome` for attempt `fence`, as completeJob does (db/queries/jobs.ts): resolves to
   * false if the attempt no longer holds the job (the caller must delete what it uploaded), and
   * rejects if the database could not be reached (the caller may call again: it is idempotent).
   */
  complete(fence: Fence, outcome: JobOutcome): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ completion: { ...fence, ...outcome }, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.recording || this.waiting.length === 0) return;
    this.recording = true;
    const batch = this.waiting.splice(0, this.options.maxBatch ?? 64);
    try {
      await this.send(batch);
    } finally {
      this.recording = false;
      void this.flush();
    }
  }

  private async send(batch: Waiting[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.timeoutMs ?? 60_000;
    try {
      const recorded = await Promise.race([
        this.record(batch.map((waiting) => waiting.completion)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new CompletionTimeoutError(`recording job outcomes took over ${timeoutMs} ms`),
              ),
            timeoutMs,
          );
        }),
      ]);
      batch.forEach((waiting, index) => waiting.resolve(recorded[index]!));
    } catch (error) {
      if (batch.length === 1 || error instanceof CompletionTimeoutError) {
        for (const waiting of batch) waiting.reject(error);
        return;
      }
      // One bad outcome must not fail the others: each goes again on its own.
      await Promise.all(batch.map((waiting) => this.send([waiting])));
    } finally {
      clearTimeout(timer);
    }
  }
}
