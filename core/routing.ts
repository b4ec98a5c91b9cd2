import { CROSS_HOST_PLATFORM, type ToolchainMode } from './recipe';

/** What a worker runs: OCI platforms natively, and others by QEMU emulation. */
export interface WorkerPlatforms {
  platforms: string[];
  emulatedPlatforms: string[];
}

/**
 * The toolchain mode in which `worker` runs a job for `platform` that allows `toolchains`: the
 * first of the routing policy it can (native, also for an emulated target, on a worker of the
 * platform; cross on a linux/amd64 worker; emulated on one with QEMU for it); undefined if none.
 * The same rule as the SQL function crossdock_toolchain_for (db/migrations/0003_routing_trust.sql)
 * that claims use; db/queries/routing.test.ts checks they agree.
 */
export function toolchainFor(
  toolchains: readonly ToolchainMode[],
  platform: string,
  worker: WorkerPlatforms,
): ToolchainMode | undefined {
  if (
    worker.platforms.includes(platform) &&
    (toolchains.includes('native') || toolchains.includes('emulated'))
  )
    return 'native';
  if (toolchains.includes('cross') && worker.platforms.includes(CROSS_HOST_PLATFORM))
    return 'cross';
  if (toolchains.includes('emulated') && worker.emulatedPlatforms.includes(platform))
    return 'emulated';
  return undefined;
}
