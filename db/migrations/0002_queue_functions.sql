-- The job state machine as SQL functions: each operation of the queue is one round trip, as
-- graphile-worker's add_job, get_job and complete_job are (docs/decisions/0004-queue-functions-in-sql.md).
-- db/queries/*.ts call them; nothing else writes job or build states.
--
-- Their statements run on generic plans, made once per connection: the statements are small
-- lookups by id and by the queue's indexes, and making a custom plan for each call cost more than
-- running it (a third of the database's CPU in the throughput benchmark).
--
-- Locks are taken in one order everywhere, so that concurrent calls wait for each other instead of
-- deadlocking: the jobs a call changes first (in id order), then the jobs attached to them, then
-- all the builds whose state may change, in id order, at once (crossdock_update_build_states).
--
-- Notifications (channels as in db/notify.ts CHANNELS) are sent in the transaction that makes
-- the change, so they cannot be lost between a commit and a NOTIFY sent after it. PostgreSQL
-- delivers them at commit, once per channel and payload.

-- builds_unreported no longer names `state`, and builds leave room on their pages, so that the
-- two changes of a build's state per job are HOT updates (no index written).
DROP INDEX "builds_unreported";--> statement-breakpoint
CREATE INDEX "builds_unreported" ON "builds" USING btree ("id") WHERE (reported_state is null or reported_state in ('queued', 'running')) and notify -> 'slack' ? 'ts';--> statement-breakpoint
ALTER TABLE "builds" SET (fillfactor = 80);--> statement-breakpoint
-- A pull request's and a branch's builds (superseded builds; the portal's pages).
CREATE INDEX "builds_repo_pull" ON "builds" USING btree ("repo_id","pull_number") WHERE pull_number is not null;--> statement-breakpoint
CREATE INDEX "builds_repo_branch" ON "builds" USING btree ("repo_id","branch") WHERE pull_number is null and tag is null;--> statement-breakpoint

-- Inserts or updates repository owner/name; returns the row. Writes (and so locks the row) only
-- when something changed, so concurrent builds of one repository do not queue on its lock.
CREATE FUNCTION crossdock_upsert_repo(p_owner text, p_name text, p_clone_url text, p_source text)
RETURNS repos LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  repo repos;
BEGIN
  SELECT * INTO repo FROM repos WHERE owner = p_owner AND name = p_name;
  IF FOUND AND (repo.clone_url, repo.source) = (p_clone_url, p_source) THEN
    RETURN repo;
  END IF;
  INSERT INTO repos (owner, name, clone_url, source) VALUES (p_owner, p_name, p_clone_url, p_source)
  ON CONFLICT (owner, name) DO UPDATE SET clone_url = excluded.clone_url, source = excluded.source
  RETURNING * INTO repo;
  RETURN repo;
END $$;
--> statement-breakpoint

-- Sets the states of builds `p_build_ids` from their jobs: running while any job is unfinished,
-- else the worst outcome. Locks the builds' rows first (in id order), so that two transactions
-- finishing jobs of one build take turns and the second (its next statement reading anew under
-- READ COMMITTED) sees the first's job. Notifies crossdock_builds of each build that changed.
CREATE FUNCTION crossdock_update_build_states(p_build_ids bigint[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  changed_ids bigint[];
BEGIN
  PERFORM 1 FROM builds WHERE id = ANY (p_build_ids) ORDER BY id FOR UPDATE;
  WITH changed AS (
    UPDATE builds SET
      state = summary.state,
      finished_at = CASE WHEN summary.state IN ('queued', 'running') THEN NULL ELSE now() END
    FROM (
      SELECT build_id, CASE
          WHEN bool_or(state = 'running') OR (bool_or(state = 'queued') AND bool_or(state <> 'queued')) THEN 'running'
          WHEN bool_and(state = 'queued') THEN 'queued'
          WHEN bool_or(state = 'canceled') THEN 'canceled'
          WHEN bool_or(state IN ('failed', 'timed_out')) THEN 'failed'
          ELSE 'succeeded' END AS state
      FROM jobs WHERE build_id = ANY (p_build_ids)
      GROUP BY build_id
    ) AS summary
    WHERE builds.id = ANY (p_build_ids) AND builds.id = summary.build_id
      AND builds.state IS DISTINCT FROM summary.state
    RETURNING builds.id
  )
  SELECT array_agg(id) INTO changed_ids FROM changed;
  PERFORM pg_notify('crossdock_builds', id::text) FROM unnest(changed_ids) AS id;
END $$;
--> statement-breakpoint

-- Gives jobs `p_to_job_ids` artifact rows for the objects of job `p_from_job_id`'s artifacts.
CREATE FUNCTION crossdock_copy_artifacts(p_from_job_id bigint, p_to_job_ids bigint[])
RETURNS void LANGUAGE sql AS $$
  INSERT INTO artifacts (job_id, name, object_key, size, sha256)
  SELECT target.id, a.name, a.object_key, a.size, a.sha256
  FROM artifacts a CROSS JOIN unnest(p_to_job_ids) AS target(id)
  WHERE a.job_id = p_from_job_id;
$$;
--> statement-breakpoint

-- After job `p_job_id` reached a final state, settles the queued jobs attached to it (identical
-- requests): they take a succeeded, failed or timed-out outcome with its artifacts; if it was
-- canceled, they detach and are queued to run on their own. Returns the builds of the jobs that
-- took an outcome: the caller updates their states with its own (see the lock order above).
CREATE FUNCTION crossdock_settle_followers(p_job_id bigint) RETURNS bigint[] LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  leader jobs;
  follower_ids bigint[];
  build_ids bigint[];
  platforms text[];
BEGIN
  SELECT * INTO leader FROM jobs WHERE id = p_job_id;
  IF leader.state = 'canceled' THEN
    WITH detached AS (
      UPDATE jobs SET reuse_of_job_id = NULL
      WHERE reuse_of_job_id = p_job_id AND state = 'queued'
      RETURNING run_platform
    )
    SELECT array_agg(DISTINCT run_platform) INTO platforms FROM detached;
    PERFORM pg_notify('crossdock_jobs', platform) FROM unnest(platforms) AS platform;
    RETURN '{}';
  END IF;
  WITH followers AS (
    UPDATE jobs SET
      state = leader.state, exit_code = leader.exit_code, image_digest = leader.image_digest,
      error = leader.error, started_at = leader.started_at, finished_at = now()
    WHERE reuse_of_job_id = p_job_id AND state = 'queued'
    RETURNING id, jobs.build_id
  )
  SELECT array_agg(id), array_agg(DISTINCT followers.build_id ORDER BY followers.build_id)
    INTO follower_ids, build_ids FROM followers;
  IF follower_ids IS NULL THEN
    RETURN '{}';
  END IF;
  PERFORM crossdock_copy_artifacts(p_job_id, follower_ids);
  RETURN build_ids;
END $$;
--> statement-breakpoint

-- Cancels jobs `p_job_ids` on behalf of `p_by`: queued ones at once, running ones by asking their
-- workers (crossdock_cancel, and the next heartbeat). Finished jobs are left as they are.
-- Returns {"canceled": n, "stopping": n}.
CREATE FUNCTION crossdock_cancel_jobs(p_job_ids bigint[], p_by text) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  canceled_ids bigint[];
  canceled_builds bigint[];
  stopping_ids bigint[];
  each_id bigint;
BEGIN
  PERFORM 1 FROM jobs WHERE id = ANY (p_job_ids) ORDER BY id FOR NO KEY UPDATE;
  WITH canceled AS (
    UPDATE jobs SET state = 'canceled', canceled_by = p_by, error = 'canceled by ' || p_by,
      finished_at = now()
    WHERE id = ANY (p_job_ids) AND state = 'queued'
    RETURNING id, build_id
  )
  SELECT coalesce(array_agg(canceled.id ORDER BY canceled.id), '{}'),
         coalesce(array_agg(DISTINCT canceled.build_id ORDER BY canceled.build_id), '{}')
    INTO canceled_ids, canceled_builds FROM canceled;
  WITH asked AS (
    UPDATE jobs SET cancel_requested_at = now(), canceled_by = p_by
    WHERE id = ANY (p_job_ids) AND state = 'running' AND cancel_requested_at IS NULL
    RETURNING id
  )
  SELECT coalesce(array_agg(asked.id), '{}') INTO stopping_ids FROM asked;
  PERFORM pg_notify('crossdock_cancel', id::text) FROM unnest(stopping_ids) AS id;
  FOREACH each_id IN ARRAY canceled_ids LOOP
    canceled_builds := canceled_builds || crossdock_settle_followers(each_id);
  END LOOP;
  PERFORM crossdock_update_build_states(canceled_builds);
  RETURN jsonb_build_object('canceled', cardinality(canceled_ids), 'stopping', cardinality(stopping_ids));
END $$;
--> statement-breakpoint

-- Finishes attempts of jobs, each fenced by its attempt number. `p_completions` is a jsonb array
-- of {"jobId", "attempt", "state", "exitCode"?, "error"?, "artifacts"?: [{"name", "objectKey",
-- "size", "sha256"}]}, at most one per job. Records each outcome and its artifacts if the attempt
-- still holds the job, settles the jobs attached to it, and updates the builds' states (in the
-- lock order above).
-- Returns a jsonb array of booleans in input order: false when the attempt no longer holds the
-- job (nothing was written for it: the caller must delete the objects it uploaded), true when it
-- was recorded now or before (a repeated call after a lost reply).
CREATE FUNCTION crossdock_complete_jobs(p_completions jsonb) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  job_ids bigint[] := ARRAY(SELECT (value ->> 'jobId')::bigint FROM jsonb_array_elements(p_completions));
  done_ids bigint[];
  build_ids bigint[];
  each_id bigint;
  recorded jsonb;
BEGIN
  PERFORM 1 FROM jobs WHERE id = ANY (job_ids) ORDER BY id FOR NO KEY UPDATE;
  WITH wanted AS (
    SELECT c.*
    FROM jsonb_array_elements(p_completions) WITH ORDINALITY AS e(value, ordinality),
         jsonb_to_record(e.value) AS c("jobId" bigint, attempt int, state text, "exitCode" int,
                                       error text, artifacts jsonb)
  ), done AS (
    UPDATE jobs SET
      state = w.state, exit_code = w."exitCode",
      error = CASE WHEN w.state = 'canceled'
                THEN 'canceled by ' || coalesce(jobs.canceled_by, 'an operator') ELSE w.error END,
      finished_at = now(), lease_expires_at = NULL
    FROM wanted w
    -- `= ANY (job_ids)` lets the planner look the jobs up by id (it cannot size `wanted`).
    WHERE jobs.id = ANY (job_ids) AND jobs.id = w."jobId" AND jobs.attempt = w.attempt
      AND jobs.state = 'running'
    RETURNING jobs.id, jobs.build_id, w.artifacts
  ), stored AS (
    INSERT INTO artifacts (job_id, name, object_key, size, sha256)
    SELECT done.id, a.name, a."objectKey", a.size, a.sha256
    FROM done, jsonb_to_recordset(done.artifacts) AS a(name text, "objectKey" text, size bigint, sha256 text)
  )
  SELECT coalesce(array_agg(done.id ORDER BY done.id), '{}'),
         coalesce(array_agg(DISTINCT done.build_id ORDER BY done.build_id), '{}')
    INTO done_ids, build_ids FROM done;
  -- Recorded now or before: the job is at that attempt with that outcome.
  WITH current AS (SELECT id, attempt, state FROM jobs WHERE id = ANY (job_ids))
  SELECT jsonb_agg(coalesce(j.attempt = (w.value ->> 'attempt')::int AND j.state = w.value ->> 'state', false)
                   ORDER BY w.ordinality)
    INTO recorded
  FROM jsonb_array_elements(p_completions) WITH ORDINALITY AS w(value, ordinality)
  LEFT JOIN current j ON j.id = (w.value ->> 'jobId')::bigint;
  FOR each_id IN
    SELECT DISTINCT f.reuse_of_job_id FROM jobs f
    WHERE f.reuse_of_job_id = ANY (done_ids) AND f.state = 'queued' ORDER BY 1
  LOOP
    build_ids := build_ids || crossdock_settle_followers(each_id);
  END LOOP;
  PERFORM crossdock_update_build_states(build_ids);
  RETURN recorded;
END $$;
--> statement-breakpoint

-- Ends attempt `p_attempt` of job `p_job_id` without an outcome of the job's own: an
-- infrastructure failure (`p_infrastructure`: the worker, Docker or object storage failed) counts
-- toward the job's max_infra_failures; otherwise (the worker is shutting down) the job is simply
-- handed back. The job is queued again, or fails once the limit is reached, or is canceled if
-- that was asked. Returns {"result": "queued" | "failed" | "canceled", "job": row}, or NULL
-- when that attempt no longer holds the job.
CREATE FUNCTION crossdock_end_attempt(p_job_id bigint, p_attempt int, p_reason text, p_infrastructure boolean)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  job jobs;
  failures int;
  result text;
BEGIN
  SELECT * INTO job FROM jobs
  WHERE id = p_job_id AND attempt = p_attempt AND state = 'running' FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  failures := job.infra_failures + CASE WHEN p_infrastructure THEN 1 ELSE 0 END;
  result := CASE
    WHEN job.cancel_requested_at IS NOT NULL THEN 'canceled'
    WHEN failures >= job.max_infra_failures THEN 'failed'
    ELSE 'queued' END;
  UPDATE jobs SET
    state = result,
    infra_failures = failures,
    error = CASE result
      WHEN 'failed' THEN format('infrastructure failure on %s attempts; the last: %s', failures, p_reason)
      WHEN 'canceled' THEN 'canceled by ' || coalesce(job.canceled_by, 'an operator')
      ELSE format('attempt %s ended: %s; queued again', job.attempt, p_reason) END,
    lease_expires_at = NULL,
    finished_at = CASE WHEN result = 'queued' THEN NULL ELSE now() END
  WHERE id = p_job_id
  RETURNING * INTO job;
  IF result = 'queued' THEN
    PERFORM pg_notify('crossdock_jobs', job.run_platform);
    PERFORM crossdock_update_build_states(ARRAY[job.build_id]);
  ELSE
    PERFORM crossdock_update_build_states(job.build_id || crossdock_settle_followers(p_job_id));
  END IF;
  RETURN jsonb_build_object('result', result, 'job', to_jsonb(job));
END $$;
--> statement-breakpoint

-- Stores a build and its jobs, and wakes the workers. The input is a jsonb object: {"repo": {"owner", "name", "cloneUrl", "source"}, "sha", "ref",
-- "pullNumber"?, "branch"?, "tag"?, "trigger", "requester", "recipeDigest", "requestKey"?,
-- "notify"?, "priority", "reuse", "cancelSuperseded", "jobs": [{"target", "platform",
-- "toolchain", "runPlatform", "image", "spec", "labels", "maxInfraFailures"}]}.
--
-- With "reuse", each job attaches to an identical one (same repository, sha, recipe digest and
-- target) that is queued or running, or that succeeded in a builder image a live worker still
-- has: a succeeded one gives its outcome and artifacts at once, a queued or running one when it
-- finishes. Two identical requests in the very same instant may both build: harmless, and cheaper
-- than serialising every request. With "cancelSuperseded", unfinished jobs of the same targets in
-- older builds of the same pull request (or branch) at another commit are canceled. With a
-- "requestKey" already used, stores nothing and returns that build.
-- Returns {"created": boolean, "build": row, "repo": row, "jobs": [rows, by id]}.
CREATE FUNCTION crossdock_create_build(p_input jsonb) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  repo repos;
  build builds;
  created jobs[];
  reused jobs;
  targets text[];
  superseded bigint[];
BEGIN
  repo := crossdock_upsert_repo(p_input #>> '{repo,owner}', p_input #>> '{repo,name}',
                                p_input #>> '{repo,cloneUrl}', p_input #>> '{repo,source}');
  INSERT INTO builds (repo_id, sha, ref, pull_number, branch, tag, trigger, requester,
                      recipe_digest, request_key, notify)
  VALUES (repo.id, p_input ->> 'sha', p_input ->> 'ref', (p_input ->> 'pullNumber')::int,
          p_input ->> 'branch', p_input ->> 'tag', p_input ->> 'trigger', p_input ->> 'requester',
          p_input ->> 'recipeDigest', p_input ->> 'requestKey', coalesce(p_input -> 'notify', '{}'))
  ON CONFLICT (request_key) DO NOTHING
  RETURNING * INTO build;
  IF NOT FOUND THEN
    SELECT * INTO build FROM builds WHERE request_key = p_input ->> 'requestKey';
    RETURN jsonb_build_object('created', false, 'build', to_jsonb(build), 'repo', to_jsonb(repo),
      'jobs', (SELECT coalesce(jsonb_agg(to_jsonb(j) ORDER BY j.id), '[]') FROM jobs j WHERE j.build_id = build.id));
  END IF;

  WITH wanted AS (
    SELECT w.*, e.ordinality
    FROM jsonb_array_elements(p_input -> 'jobs') WITH ORDINALITY AS e(value, ordinality),
         jsonb_to_record(e.value) AS w(target text, platform text, toolchain text,
                                       "runPlatform" text, image text, spec jsonb, labels text[],
                                       "maxInfraFailures" int)
  ), twin AS (
    SELECT DISTINCT ON (j.target) j.target, j.id, j.state, j.image_digest
    FROM jobs j JOIN builds other ON other.id = j.build_id
    WHERE (p_input ->> 'reuse')::boolean
      AND other.repo_id = repo.id AND other.sha = build.sha AND other.recipe_digest = build.recipe_digest
      AND j.target IN (SELECT target FROM wanted)
      AND j.reuse_of_job_id IS NULL AND j.cancel_requested_at IS NULL
      AND (j.state IN ('queued', 'running')
           OR (j.state = 'succeeded' AND EXISTS (
                 SELECT 1 FROM workers w
                 WHERE w.online
                   AND w.last_heartbeat_at > now() - make_interval(secs => 2 * w.heartbeat_seconds)
                   AND w.images ->> j.image = j.image_digest)))
    ORDER BY j.target, j.state = 'succeeded' DESC, j.id DESC
  ), inserted AS (
    INSERT INTO jobs (build_id, target, platform, toolchain, run_platform, image, spec, labels,
                      max_infra_failures, priority, reuse_of_job_id, state, exit_code,
                      image_digest, started_at, finished_at)
    SELECT build.id, w.target, w.platform, w.toolchain, w."runPlatform", w.image, w.spec, w.labels,
           w."maxInfraFailures", (p_input ->> 'priority')::int, t.id,
           CASE WHEN t.state = 'succeeded' THEN 'succeeded' ELSE 'queued' END,
           CASE WHEN t.state = 'succeeded' THEN 0 END,
           CASE WHEN t.state = 'succeeded' THEN t.image_digest END,
           CASE WHEN t.state = 'succeeded' THEN now() END,
           CASE WHEN t.state = 'succeeded' THEN now() END
    FROM wanted w LEFT JOIN twin t ON t.target = w.target
    ORDER BY w.ordinality
    RETURNING *
  )
  SELECT array_agg(inserted ORDER BY inserted.id) INTO created FROM inserted;
  targets := ARRAY(SELECT c.target FROM unnest(created) AS c);

  PERFORM pg_notify('crossdock_jobs', run_platform) FROM unnest(created) WHERE reuse_of_job_id IS NULL;
  FOR reused IN SELECT * FROM unnest(created) WHERE state = 'succeeded' LOOP
    PERFORM crossdock_copy_artifacts(reused.reuse_of_job_id, ARRAY[reused.id]);
  END LOOP;
  IF FOUND THEN
    PERFORM crossdock_update_build_states(ARRAY[build.id]);
    SELECT * INTO build FROM builds WHERE id = build.id;
  END IF;

  -- Two statements rather than one with a CASE, so that each uses its index on builds.
  IF (p_input ->> 'cancelSuperseded')::boolean AND build.tag IS NULL THEN
    IF build.pull_number IS NOT NULL THEN
      superseded := ARRAY(
        SELECT j.id FROM builds other JOIN jobs j ON j.build_id = other.id
        WHERE other.repo_id = repo.id AND other.pull_number = build.pull_number
          AND other.tag IS NULL AND other.id <> build.id AND other.sha <> build.sha
          AND j.target = ANY (targets) AND j.state IN ('queued', 'running'));
    ELSIF build.branch IS NOT NULL THEN
      superseded := ARRAY(
        SELECT j.id FROM builds other JOIN jobs j ON j.build_id = other.id
        WHERE other.repo_id = repo.id AND other.branch = build.branch
          AND other.pull_number IS NULL AND other.tag IS NULL
          AND other.id <> build.id AND other.sha <> build.sha
          AND j.target = ANY (targets) AND j.state IN ('queued', 'running'));
    END IF;
    IF cardinality(superseded) > 0 THEN
      PERFORM crossdock_cancel_jobs(superseded,
        format('build %s (a newer commit of %s)', build.id, build.ref));
    END IF;
  END IF;
  RETURN jsonb_build_object('created', true, 'build', to_jsonb(build), 'repo', to_jsonb(repo),
    'jobs', (SELECT jsonb_agg(to_jsonb(c) ORDER BY c.id) FROM unnest(created) AS c));
END $$;
