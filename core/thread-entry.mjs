// Entry of every worker thread started by core/threads.ts: registers tsx's loader in this
// thread (a thread does not inherit the main thread's module hooks), then imports the
// TypeScript module named by workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
