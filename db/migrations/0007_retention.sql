DROP INDEX "builds_repo_branch";--> statement-breakpoint
CREATE INDEX "artifacts_object_key" ON "artifacts" USING btree ("object_key");--> statement-breakpoint
CREATE INDEX "builds_retention" ON "builds" USING btree ("id") WHERE artifacts_deleted_at is null and tag is null and not pinned;--> statement-breakpoint
CREATE INDEX "builds_repo_branch" ON "builds" USING btree ("repo_id","branch","id") WHERE pull_number is null and tag is null;--> statement-breakpoint

-- Artifact retention (docs/retention.md). crossdock_create_build as in 0003_routing_trust.sql,
-- except that a job is never reused from a build whose artifacts the cleanup deleted: the new
-- build would show "succeeded" with no files. A build being cleaned is waited for (its row lock),
-- and if its artifacts went meanwhile the call fails with serialization_failure (40001), so that
-- no artifact row is ever copied for an object that is gone.
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
      AND other.artifacts_deleted_at IS NULL
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
    -- The retention cleanup holds the reused build's row (FOR UPDATE) while it deletes that
    -- build's objects and rows: wait for it, and never copy rows whose objects are going.
    PERFORM 1 FROM builds b JOIN jobs j ON j.build_id = b.id
    WHERE j.id = reused.reuse_of_job_id AND b.artifacts_deleted_at IS NULL
    FOR SHARE OF b;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'the artifacts of job % were deleted meanwhile; request the build again',
        reused.reuse_of_job_id USING ERRCODE = 'serialization_failure';
    END IF;
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
