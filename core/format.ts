/** Human-readable size in binary units: 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Elapsed time between two instants as "1m 05s" / "42s". */
export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes}m ${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`;
}

/**
 * A job's toolchain as people read it: the mode it runs or ran in, or, while it waits for a
 * worker to choose among several, those modes in the routing policy's order ("native|cross").
 */
export function formatToolchain(job: { state: string; toolchain: string; toolchains: string[] }) {
  return job.state === 'queued' && job.toolchains.length > 1
    ? job.toolchains.join('|')
    : job.toolchain;
}

/** `count` and the noun for it: "1 day", "3 days"; `many` for irregular plurals ("retries"). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
