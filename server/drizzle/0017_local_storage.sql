CREATE TABLE "local_storage_resource_refs" (
	"resource_uuid" text PRIMARY KEY NOT NULL,
	"primary_storage_uuid" text NOT NULL,
	"host_uuid" text NOT NULL,
	"size" bigint NOT NULL,
	"resource_type" text DEFAULT 'VolumeVO' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "local_storage_resource_refs" ADD CONSTRAINT "local_storage_resource_refs_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("primary_storage_uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "local_storage_resource_refs" ADD CONSTRAINT "local_storage_resource_refs_host_uuid_hosts_uuid_fk" FOREIGN KEY ("host_uuid") REFERENCES "public"."hosts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "local_storage_refs_host_idx" ON "local_storage_resource_refs" USING btree ("host_uuid","primary_storage_uuid");