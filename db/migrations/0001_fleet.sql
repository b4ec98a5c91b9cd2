DROP INDEX "jobs_queued";--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "labels" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "infra_failures" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "max_infra_failures" integer DEFAULT 3 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "cancel_requested_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "canceled_by" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "reuse_of_job_id" bigint;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "emulated_platforms" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "labels" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "slots" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "heartbeat_seconds" real DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "images" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_reuse_of_job_id_jobs_id_fk" FOREIGN KEY ("reuse_of_job_id") REFERENCES "public"."jobs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_claimable" ON "jobs" USING btree ("priority" DESC NULLS LAST,"id") WHERE state = 'queued' and reuse_of_job_id is null;--> statement-breakpoint
CREATE INDEX "jobs_running_lease" ON "jobs" USING btree ("lease_expires_at") WHERE state = 'running';--> statement-breakpoint
CREATE INDEX "jobs_reuse_of" ON "jobs" USING btree ("reuse_of_job_id") WHERE reuse_of_job_id is not null;