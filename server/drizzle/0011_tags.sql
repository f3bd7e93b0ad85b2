CREATE TABLE "system_tags" (
	"uuid" text PRIMARY KEY NOT NULL,
	"resource_uuid" text NOT NULL,
	"resource_type" text NOT NULL,
	"tag" text NOT NULL,
	"type" text DEFAULT 'System' NOT NULL,
	"inherent" boolean DEFAULT false NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_tags" (
	"uuid" text PRIMARY KEY NOT NULL,
	"resource_uuid" text NOT NULL,
	"resource_type" text NOT NULL,
	"tag" text NOT NULL,
	"type" text DEFAULT 'User' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "system_tags_resource_idx" ON "system_tags" USING btree ("resource_uuid");--> statement-breakpoint
CREATE INDEX "system_tags_tag_idx" ON "system_tags" USING btree ("tag");--> statement-breakpoint
CREATE INDEX "user_tags_resource_idx" ON "user_tags" USING btree ("resource_uuid");--> statement-breakpoint
CREATE INDEX "user_tags_tag_idx" ON "user_tags" USING btree ("tag");