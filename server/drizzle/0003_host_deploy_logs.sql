CREATE TABLE "host_deploy_logs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"resource_uuid" text NOT NULL,
	"resource_type" text NOT NULL,
	"deploy_uuid" text NOT NULL,
	"agent_kind" text NOT NULL,
	"host" text NOT NULL,
	"task" text NOT NULL,
	"status" text NOT NULL,
	"level" text NOT NULL,
	"details" text NOT NULL,
	"duration_ms" integer NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "host_deploy_logs_resource_idx" ON "host_deploy_logs" USING btree ("resource_uuid","id");--> statement-breakpoint
CREATE INDEX "host_deploy_logs_deploy_idx" ON "host_deploy_logs" USING btree ("deploy_uuid");