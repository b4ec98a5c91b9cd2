-- Routing between toolchain modes and trust levels (docs/recipe.md "Routing", "Trust").
--
-- A job allows one or more toolchain modes (jobs.toolchains). A worker claims it in the first mode
-- of the routing policy it can run: native (an image of the target platform on a worker of that
-- platform; an emulated target also runs natively there), else cross (an amd64 worker), else
-- emulated (a worker with QEMU for the platform). A worker that would run it in a later mode
-- than the best it allows leaves it while a free live worker (a slot open, labels matching)
-- could run it in an earlier one; the claim records the mode, its run platform and its image.
ALTER TABLE "builds" ADD COLUMN "trusted" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "toolchains" text[];--> statement-breakpoint
UPDATE "jobs" SET "toolchains" = ARRAY["toolchain"];--> statement-breakpoint
ALTER TABLE "jobs" ALTER COLUMN "toolchains" SET NOT NULL;--> statement-breakpoint

-- The mode in which a worker running p_native natively and p_emulated by emulation runs a job for
-- p_platform that allows p_toolchains: the first of native, cross, emulated it can; NULL if none.
CREATE FUNCTION crossdock_toolchain_for(p_toolchains text[], p_platform text, p_native text[],
                                        p_emulated text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_platform = ANY (p_native) AND p_toolchains && '{native,emulated}'::text[] THEN 'native'
    WHEN 'cross' = ANY (p_toolchains) AND 'linux/amd64' = ANY (p_native) THEN 'cross'
    WHEN 'emulated' = ANY (p_toolchains) AND p_platform = ANY (p_emulated) THEN 'emulated'
  END $$;
--> statement-breakpoint

-- Whether a live worker other than p_worker_id, with a free slot and the labels p_labels, could run
-- a job (p_toolchains, p_platform) in a mode the policy prefers to p_mode.
CREATE FUNCTION crossdock_better_worker_free(p_toolchains text[], p_platform text, p_labels text[],
                                             p_mode text, p_worker_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM workers w
    WHERE w.online AND w.id <> p_worker_id
      AND w.last_heartbeat_at > now() - make_interval(secs => 2 * w.heartbeat_seconds)
      AND p_labels <@ w.labels
      AND array_position('{native,cross,emulated}'::text[],
            crossdock_toolchain_for(p_toolchains, p_platform, w.platforms, w.emulated_platforms))
          < array_position('{native,cross,emulated}'::text[], p_mode)
      AND w.slots > (SELECT count(*) FROM jobs r WHERE r.state = 'running' AND r.worker_id = w.id))
$$;
--> statement-breakpoint

-- Stores a build and its jobs, and wakes the workers. The input is a jsonb object: {"repo": {"owner", "name", "cloneUrl", "source"}, "sha", "ref",
-- "pullNumber"?, "branch"?, "tag"?, "trigger", "requester", "recipeDigest", "requestKey"?,
-- "notify"?, "trusted", "priority", "reuse", "cancelSuperseded", "jobs": [{"target", "platform",
-- "toolchains", "toolchain", "runPlatform", "image", "spec", "labels", "maxInfraFailures"}]}.
--
-- With "reuse", each job attaches to an identical one (same repository, sha, recipe digest and
-- target) that is queued or running, or that succeeded in a builder image a live worker still
-- has, and that is trusted unless this build is not (an untrusted build used untrusted caches): a succeeded one gives its outcome and artifacts at once, a queued or running one when it
-- finishes. Two identical requests in the very same instant may both build: harmless, and cheaper
-- than serialising every request. With "cancelSuperseded", unfinished jobs of the same targets in
-- older builds of the same pull request (or branch) at another commit are canceled. With a
-- "requestKey" already used, stores nothing and returns that build.
-- Returns {"created": boolean, "build": row, "repo": row, "jobs": [rows, by id]}.
CREATE OR REPLACE FUNCTION crossdock_create_build(p_input jsonb) RETURNS jsonb LANGUAGE plpgsql
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
                      recipe_digest, request_key, notify, trusted)
  VALUES (repo.id, p_input ->> 'sha', p_input ->> 'ref', (p_input ->> 'pullNumber')::int,
          p_input ->> 'branch', p_input ->> 'tag', p_input ->> 'trigger', p_input ->> 'requester',
          p_input ->> 'recipeDigest', p_input ->> 'requestKey', coalesce(p_input -> 'notify', '{}'),
          coalesce((p_input ->> 'trusted')::boolean, true))
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
         jsonb_to_record(e.value) AS w(target text, platform text, toolchains text[], toolchain text,
                                       "runPlatform" text, image text, spec jsonb, labels text[],
                                       "maxInfraFailures" int)
  ), twin AS (
    SELECT DISTINCT ON (j.target) j.target, j.id, j.state, j.image_digest
    FROM jobs j JOIN builds other ON other.id = j.build_id
    WHERE (p_input ->> 'reuse')::boolean
      AND other.repo_id = repo.id AND other.sha = build.sha AND other.recipe_digest = build.recipe_digest
      AND j.target IN (SELECT target FROM wanted)
      AND j.reuse_of_job_id IS NULL AND j.cancel_requested_at IS NULL
      AND (other.trusted OR NOT build.trusted)
      AND (j.state IN ('queued', 'running')
           OR (j.state = 'succeeded' AND EXISTS (
                 SELECT 1 FROM workers w
                 WHERE w.online
                   AND w.last_heartbeat_at > now() - make_interval(secs => 2 * w.heartbeat_seconds)
                   AND w.images ->> j.image = j.image_digest)))
    ORDER BY j.target, j.state = 'succeeded' DESC, j.id DESC
  ), inserted AS (
    INSERT INTO jobs (build_id, target, platform, toolchains, toolchain, run_platform, image, spec, labels,
                      max_infra_failures, priority, reuse_of_job_id, state, exit_code,
                      image_digest, started_at, finished_at)
    SELECT build.id, w.target, w.platform, w.toolchains, w.toolchain, w."runPlatform", w.image, w.spec, w.labels,
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
