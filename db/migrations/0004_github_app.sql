CREATE TABLE "github_approvals" (
	"repo_id" bigint NOT NULL,
	"pull_number" integer NOT NULL,
	"sha" text NOT NULL,
	"approved_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "github_approvals_repo_id_pull_number_sha_pk" PRIMARY KEY("repo_id","pull_number","sha")
);
--> statement-breakpoint
CREATE TABLE "github_check_runs" (
	"job_id" bigint PRIMARY KEY NOT NULL,
	"check_run_id" bigint NOT NULL,
	"reported_state" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "github_holds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"repo_id" bigint NOT NULL,
	"pull_number" integer NOT NULL,
	"sha" text NOT NULL,
	"request" jsonb NOT NULL,
	"check_run_id" bigint,
	"build_id" bigint,
	"released_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "github_pull_comments" (
	"repo_id" bigint NOT NULL,
	"pull_number" integer NOT NULL,
	"comment_id" bigint,
	"body_digest" text,
	"notice" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "github_pull_comments_repo_id_pull_number_pk" PRIMARY KEY("repo_id","pull_number")
);
--> statement-breakpoint
CREATE TABLE "github_release_assets" (
	"release_id" bigint NOT NULL,
	"artifact_id" bigint NOT NULL,
	"name" text NOT NULL,
	"asset_id" bigint,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "github_release_assets_release_id_artifact_id_pk" PRIMARY KEY("release_id","artifact_id")
);
--> statement-breakpoint
CREATE TABLE "github_releases" (
	"release_id" bigint PRIMARY KEY NOT NULL,
	"repo_id" bigint NOT NULL,
	"tag" text NOT NULL,
	"upload_url" text NOT NULL,
	"installation_id" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "repos" ADD COLUMN "github_installation_id" bigint;--> statement-breakpoint
ALTER TABLE "github_approvals" ADD CONSTRAINT "github_approvals_repo_id_repos_id_fk" FOREIGN KEY ("repo_id") REFERENCES "public"."repos"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_check_runs" ADD CONSTRAINT "github_check_runs_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_holds" ADD CONSTRAINT "github_holds_repo_id_repos_id_fk" FOREIGN KEY ("repo_id") REFERENCES "public"."repos"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_holds" ADD CONSTRAINT "github_holds_build_id_builds_id_fk" FOREIGN KEY ("build_id") REFERENCES "public"."builds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_pull_comments" ADD CONSTRAINT "github_pull_comments_repo_id_repos_id_fk" FOREIGN KEY ("repo_id") REFERENCES "public"."repos"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_release_assets" ADD CONSTRAINT "github_release_assets_release_id_github_releases_release_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."github_releases"("release_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_release_assets" ADD CONSTRAINT "github_release_assets_artifact_id_artifacts_id_fk" FOREIGN KEY ("artifact_id") REFERENCES "public"."artifacts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_releases" ADD CONSTRAINT "github_releases_repo_id_repos_id_fk" FOREIGN KEY ("repo_id") REFERENCES "public"."repos"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "github_holds_pull" ON "github_holds" USING btree ("repo_id","pull_number","sha");--> statement-breakpoint
CREATE UNIQUE INDEX "github_holds_request" ON "github_holds" USING btree ((request ->> 'requestKey')) WHERE released_at is null;--> statement-breakpoint
CREATE INDEX "github_releases_tag" ON "github_releases" USING btree ("repo_id","tag");--> statement-breakpoint
CREATE INDEX "builds_github" ON "builds" USING btree ("created_at") WHERE notify ? 'github';