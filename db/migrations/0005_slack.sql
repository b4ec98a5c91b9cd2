CREATE TABLE "refusals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"front_end" text NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"repo" text,
	"reason" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "slack_channels" (
	"channel_id" text PRIMARY KEY NOT NULL,
	"repo" text NOT NULL,
	"set_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "slack_holds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"request_id" text NOT NULL,
	"channel_id" text NOT NULL,
	"message_ts" text,
	"request" jsonb NOT NULL,
	"state" text DEFAULT 'held' NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"build_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "slack_holds_request_id_unique" UNIQUE("request_id")
);
--> statement-breakpoint
CREATE TABLE "slack_posts" (
	"build_id" bigint NOT NULL,
	"kind" text NOT NULL,
	"job_id" bigint DEFAULT 0 NOT NULL,
	"ts" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "slack_posts_build_id_kind_job_id_pk" PRIMARY KEY("build_id","kind","job_id")
);
--> statement-breakpoint
CREATE TABLE "slack_users" (
	"user_id" text PRIMARY KEY NOT NULL,
	"direct_messages" boolean DEFAULT true NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "slack_holds" ADD CONSTRAINT "slack_holds_build_id_builds_id_fk" FOREIGN KEY ("build_id") REFERENCES "public"."builds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "slack_posts" ADD CONSTRAINT "slack_posts_build_id_builds_id_fk" FOREIGN KEY ("build_id") REFERENCES "public"."builds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "refusals_created" ON "refusals" USING btree ("created_at");