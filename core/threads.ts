import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

/** What core/thread-entry.mjs receives: the module to run and that module's data. */
interface ThreadData<T> {
  /** file: URL of the TypeScript module the thread runs. */
  entry: string;
  data: T;
}

/**
 * Starts a worker thread running the TypeScript module at `entry` (a file: URL), through tsx's
 * loader, with `data` (anything the structured clone algorithm copies: no functions, no class
 * instances beyond the built-in ones) for the module to read with `threadData()`. Node options
 * are not passed on (execArgv []), so the thread is the same under tsx, vitest and plain node.
 */
export function startTypeScriptThread<T>(entry: URL, data: T, name: string): Worker {
  const threadData: ThreadData<T> = { entry: entry.href, data };
  return new Worker(new URL('./thread-entry.mjs', import.meta.url), {
    workerData: threadData,
    execArgv: [],
    name,
  });
}

/**
 * In a thread started by startTypeScriptThread, the data it was given and the port to its
 * parent. Throws when called on the main thread.
 */
export function threadData<T>(): { data: T; port: NonNullable<typeof parentPort> } {
  if (isMainThread || !parentPort) throw new Error('threadData() runs only in a worker thread');
  return { data: (workerData as ThreadData<T>).data, port: parentPort };
}
