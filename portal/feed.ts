import { Feed } from 'feed';
import { portalUrls } from '../core/urls';
import type { Build } from '../db/queries/builds';
import type { Repo } from '../db/queries/repos';

/**
 * The Atom feed (RFC 4287, written by the `feed` package) of a repository's releases: one entry
 * per release (`releases` newest first), linking its release page, dated by when its build
 * finished. The feed's own id and link are the repository's page.
 */
export function releasesFeed(base: string, repo: Repo, releases: Build[]): string {
  const name = `${repo.owner}/${repo.name}`;
  const feed = new Feed({
    id: portalUrls.repo(base, repo.owner, repo.name),
    link: portalUrls.repo(base, repo.owner, repo.name),
    title: `${name} releases`,
    updated: releases[0]?.finishedAt ?? new Date(0),
    generator: 'Crossdock',
    copyright: '',
    feedLinks: { atom: portalUrls.releasesFeed(base, repo.owner, repo.name) },
  });
  for (const build of releases) {
    const link = portalUrls.release(base, repo.owner, repo.name, build.tag!);
    feed.addItem({
      id: link,
      link,
      title: `${name} ${build.tag}`,
      date: build.finishedAt ?? build.createdAt,
      description: `Commit ${build.sha}, build #${build.id}.`,
    });
  }
  return feed.atom1();
}
