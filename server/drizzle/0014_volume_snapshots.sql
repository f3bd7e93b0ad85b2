CREATE TABLE "volume_snapshot_backup_storage_refs" (
	"volume_snapshot_uuid" text NOT NULL,
	"backup_storage_uuid" text NOT NULL,
	"install_path" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "volume_snapshot_backup_storage_refs_volume_snapshot_uuid_backup_storage_uuid_pk" PRIMARY KEY("volume_snapshot_uuid","backup_storage_uuid")
);
--> statement-breakpoint
CREATE TABLE "volume_snapshot_trees" (
	"uuid" text PRIMARY KEY NOT NULL,
	"volume_uuid" text NOT NULL,
	"current" boolean DEFAULT true NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "volume_snapshots" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"type" text DEFAULT 'Hypervisor' NOT NULL,
	"volume_uuid" text NOT NULL,
	"tree_uuid" text NOT NULL,
	"parent_uuid" text,
	"primary_storage_uuid" text NOT NULL,
	"primary_storage_install_path" text,
	"volume_type" text NOT NULL,
	"format" text DEFAULT 'qcow2' NOT NULL,
	"latest" boolean DEFAULT false NOT NULL,
	"full_snapshot" boolean DEFAULT false NOT NULL,
	"distance" integer DEFAULT 0 NOT NULL,
	"size" bigint DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text DEFAULT 'Creating' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "volume_snapshot_backup_storage_refs" ADD CONSTRAINT "volume_snapshot_backup_storage_refs_volume_snapshot_uuid_volume_snapshots_uuid_fk" FOREIGN KEY ("volume_snapshot_uuid") REFERENCES "public"."volume_snapshots"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volume_snapshot_backup_storage_refs" ADD CONSTRAINT "volume_snapshot_backup_storage_refs_backup_storage_uuid_backup_storage_uuid_fk" FOREIGN KEY ("backup_storage_uuid") REFERENCES "public"."backup_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volume_snapshots" ADD CONSTRAINT "volume_snapshots_tree_uuid_volume_snapshot_trees_uuid_fk" FOREIGN KEY ("tree_uuid") REFERENCES "public"."volume_snapshot_trees"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volume_snapshots" ADD CONSTRAINT "volume_snapshots_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("primary_storage_uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "volume_snapshot_trees_volume_idx" ON "volume_snapshot_trees" USING btree ("volume_uuid");--> statement-breakpoint
CREATE INDEX "volume_snapshots_volume_idx" ON "volume_snapshots" USING btree ("volume_uuid");--> statement-breakpoint
CREATE INDEX "volume_snapshots_tree_idx" ON "volume_snapshots" USING btree ("tree_uuid");--> statement-breakpoint
CREATE INDEX "volume_snapshots_ps_idx" ON "volume_snapshots" USING btree ("primary_storage_uuid");