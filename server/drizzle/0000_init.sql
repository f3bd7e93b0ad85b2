CREATE TABLE "api_jobs" (
	"uuid" text PRIMARY KEY NOT NULL,
	"api_name" text NOT NULL,
	"request" jsonb NOT NULL,
	"status" text NOT NULL,
	"result" json,
	"error" jsonb,
	"timeout_ms" integer NOT NULL,
	"deadline" timestamp with time zone NOT NULL,
	"owner_node" text NOT NULL,
	"session_uuid" text,
	"web_hook" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "global_configs" (
	"id" serial PRIMARY KEY NOT NULL,
	"category" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"default_value" text NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "management_nodes" (
	"uuid" text PRIMARY KEY NOT NULL,
	"host_name" text NOT NULL,
	"port" integer DEFAULT 0 NOT NULL,
	"join_date" timestamp with time zone DEFAULT now() NOT NULL,
	"heart_beat" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "accounts" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"password_hash" text NOT NULL,
	"type" text NOT NULL,
	"description" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "accounts_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"uuid" text PRIMARY KEY NOT NULL,
	"account_uuid" text NOT NULL,
	"user_uuid" text NOT NULL,
	"user_type" text NOT NULL,
	"expired_date" timestamp with time zone NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "zones" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"type" text DEFAULT 'zstack' NOT NULL,
	"is_default" boolean DEFAULT false NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_account_uuid_accounts_uuid_fk" FOREIGN KEY ("account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_jobs_status_idx" ON "api_jobs" USING btree ("status","owner_node");--> statement-breakpoint
CREATE INDEX "api_jobs_last_op_idx" ON "api_jobs" USING btree ("last_op_date");--> statement-breakpoint
CREATE UNIQUE INDEX "global_configs_category_name_idx" ON "global_configs" USING btree ("category","name");--> statement-breakpoint
CREATE INDEX "sessions_expired_idx" ON "sessions" USING btree ("expired_date");