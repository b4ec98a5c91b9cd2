import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import { gitConfigEnv } from '../core/git';

/** Git's environment for one fetch with a token, and the token's revocation. */
export interface CloneCredentials {
  /** GIT_CONFIG_* variables setting `http.extraHeader` to the token (gitConfigEnv). */
  env: Record<string, string>;
  /** Revokes the token (DELETE /installation/token); rejects if GitHub refused (it expires anyway). */
  revoke(): Promise<void>;
}

/** Mints credentials to clone one repository of a GitHub App installation. */
export type CloneCredentialSource = (
  installationId: number,
  repository: string,
) => Promise<CloneCredentials>;

/**
 * Clone credentials from a GitHub App (docs.github.com/apps/creating-github-apps/authenticating-
 * with-a-github-app/generating-an-installation-access-token-for-a-github-app): for each clone a
 * new installation token limited to that one repository and `contents: read`, which lasts at most
 * an hour and is revoked once the fetch is done. The token goes to git as an HTTP header through
 * the environment (`Authorization: Basic x-access-token:<token>`, as GitHub's git server takes
 * it): never on a command line, in a URL, in a git config file or in a log.
 */
export function githubCloneCredentials(options: {
  apiUrl: string;
  appId: number;
  privateKey: string;
}): CloneCredentialSource {
  const api = request.defaults({ baseUrl: options.apiUrl });
  const auth = createAppAuth({
    appId: options.appId,
    privateKey: options.privateKey,
    request: api,
  });
  return async (installationId, repository) => {
    const { token } = await auth({
      type: 'installation',
      installationId,
      repositoryNames: [repository],
      permissions: { contents: 'read' },
      refresh: true,
    });
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    return {
      env: gitConfigEnv({ 'http.extraHeader': `Authorization: Basic ${basic}` }),
      revoke: async () => {
        await api('DELETE /installation/token', { headers: { authorization: `token ${token}` } });
      },
    };
  };
}
