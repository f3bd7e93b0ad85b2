CREATE TABLE "gc_jobs" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"runner" text NOT NULL,
	"context" jsonb NOT NULL,
	"status" text DEFAULT 'Idle' NOT NULL,
	"type" text NOT NULL,
	"management_node_uuid" text,
	"resource_uuid" text,
	"interval_ms" integer NOT NULL,
	"next_run_at" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" jsonb,
	"result" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "gc_jobs" ADD CONSTRAINT "gc_jobs_management_node_uuid_management_nodes_uuid_fk" FOREIGN KEY ("management_node_uuid") REFERENCES "public"."management_nodes"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "gc_jobs_due_idx" ON "gc_jobs" USING btree ("status","next_run_at");--> statement-breakpoint
CREATE INDEX "gc_jobs_resource_idx" ON "gc_jobs" USING btree ("resource_uuid");