CREATE TABLE "artifacts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" bigint NOT NULL,
	"name" text NOT NULL,
	"object_key" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "builds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"repo_id" bigint NOT NULL,
	"sha" text NOT NULL,
	"ref" text NOT NULL,
	"pull_number" integer,
	"branch" text,
	"tag" text,
	"trigger" text NOT NULL,
	"requester" text NOT NULL,
	"state" text DEFAULT 'queued' NOT NULL,
	"recipe_digest" text NOT NULL,
	"request_key" text,
	"notify" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"reported_state" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "job_log_chunks" (
	"job_id" bigint NOT NULL,
	"attempt" integer NOT NULL,
	"seq" integer NOT NULL,
	"data" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_log_chunks_job_id_attempt_seq_pk" PRIMARY KEY("job_id","attempt","seq")
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"build_id" bigint NOT NULL,
	"target" text NOT NULL,
	"platform" text NOT NULL,
	"toolchain" text NOT NULL,
	"run_platform" text NOT NULL,
	"image" text NOT NULL,
	"spec" jsonb NOT NULL,
	"state" text DEFAULT 'queued' NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"worker_id" text,
	"lease_expires_at" timestamp with time zone,
	"image_digest" text,
	"exit_code" integer,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "jobs_attempt_nonnegative" CHECK (attempt >= 0)
);
--> statement-breakpoint
CREATE TABLE "repos" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"name" text NOT NULL,
	"clone_url" text NOT NULL,
	"source" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "workers" (
	"id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"version" text NOT NULL,
	"platforms" text[] NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"stopped_at" timestamp with time zone,
	"online" boolean DEFAULT true NOT NULL
);
--> statement-breakpoint
ALTER TABLE "artifacts" ADD CONSTRAINT "artifacts_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_repo_id_repos_id_fk" FOREIGN KEY ("repo_id") REFERENCES "public"."repos"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_log_chunks" ADD CONSTRAINT "job_log_chunks_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_build_id_builds_id_fk" FOREIGN KEY ("build_id") REFERENCES "public"."builds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "artifacts_job_name" ON "artifacts" USING btree ("job_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "builds_request_key" ON "builds" USING btree ("request_key");--> statement-breakpoint
CREATE INDEX "builds_repo_sha" ON "builds" USING btree ("repo_id","sha");--> statement-breakpoint
CREATE INDEX "builds_unreported" ON "builds" USING btree ("id") WHERE reported_state is distinct from state;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_build_target" ON "jobs" USING btree ("build_id","target");--> statement-breakpoint
CREATE INDEX "jobs_queued" ON "jobs" USING btree ("run_platform","id") WHERE state = 'queued';--> statement-breakpoint
CREATE UNIQUE INDEX "repos_owner_name" ON "repos" USING btree ("owner","name");