import { Client } from 'minio';

/** How to reach the S3-compatible object store (MinIO, Garage, SeaweedFS, Ceph RGW, AWS S3). */
export interface StorageOptions {
  /** e.g. http://127.0.0.1:9000 */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
}

/** A minio client for `endpoint` (path-style addressing, as MinIO and most self-hosted S3 expect). */
export function createStorageClient(options: StorageOptions): Client {
  const url = new URL(options.endpoint);
  return new Client({
    endPoint: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    useSSL: url.protocol === 'https:',
    accessKey: options.accessKey,
    secretKey: options.secretKey,
    region: options.region ?? 'us-east-1',
    pathStyle: true,
  });
}

/** Creates the bucket if it does not exist. */
export async function ensureBucket(
  client: Client,
  bucket: string,
  region = 'us-east-1',
): Promise<void> {
  if (!(await client.bucketExists(bucket))) {
    try {
      await client.makeBucket(bucket, region);
    } catch (error) {
      // Another process created it in between.
      if (!(await client.bucketExists(bucket))) throw error;
    }
  }
}

/**
 * Object key of an artifact: artifacts/<owner>/<repo>/<sha>/<target>/<jobId>.<attempt>/<file>.
 * The job and attempt keep a superseded attempt from overwriting the objects of the live one.
 */
export function artifactKey(parts: {
  owner: string;
  repo: string;
  sha: string;
  target: string;
  jobId: number;
  attempt: number;
  file: string;
}): string {
  return `artifacts/${parts.owner}/${parts.repo}/${parts.sha}/${parts.target}/${parts.jobId}.${parts.attempt}/${parts.file}`;
}
