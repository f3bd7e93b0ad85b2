CREATE TABLE "ceph_backup_storage" (
	"uuid" text PRIMARY KEY NOT NULL,
	"fsid" text,
	"pool_name" text NOT NULL,
	"pool_predefined" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ceph_backup_storage_mons" (
	"uuid" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"mon_addr" text,
	"mon_port" integer DEFAULT 6789 NOT NULL,
	"ssh_port" integer DEFAULT 22 NOT NULL,
	"ssh_username" text NOT NULL,
	"credential" text,
	"status" text DEFAULT 'Connected' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	"backup_storage_uuid" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ceph_primary_storage" (
	"uuid" text PRIMARY KEY NOT NULL,
	"fsid" text,
	"root_volume_pool_name" text NOT NULL,
	"data_volume_pool_name" text NOT NULL,
	"image_cache_pool_name" text NOT NULL,
	"predefined_pools" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ceph_primary_storage_mons" (
	"uuid" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"mon_addr" text,
	"mon_port" integer DEFAULT 6789 NOT NULL,
	"ssh_port" integer DEFAULT 22 NOT NULL,
	"ssh_username" text NOT NULL,
	"credential" text,
	"status" text DEFAULT 'Connected' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	"primary_storage_uuid" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "iscsi_primary_storage" (
	"uuid" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"ssh_username" text NOT NULL,
	"chap_username" text,
	"filesystem_type" text DEFAULT 'btrfs' NOT NULL,
	"credential" text NOT NULL,
	"chap_credential" text
);
--> statement-breakpoint
ALTER TABLE "ceph_backup_storage" ADD CONSTRAINT "ceph_backup_storage_uuid_backup_storage_uuid_fk" FOREIGN KEY ("uuid") REFERENCES "public"."backup_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ceph_backup_storage_mons" ADD CONSTRAINT "ceph_backup_storage_mons_backup_storage_uuid_backup_storage_uuid_fk" FOREIGN KEY ("backup_storage_uuid") REFERENCES "public"."backup_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ceph_primary_storage" ADD CONSTRAINT "ceph_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ceph_primary_storage_mons" ADD CONSTRAINT "ceph_primary_storage_mons_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("primary_storage_uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "iscsi_primary_storage" ADD CONSTRAINT "iscsi_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "ceph_backup_storage_mons_hostname" ON "ceph_backup_storage_mons" USING btree ("hostname");--> statement-breakpoint
CREATE UNIQUE INDEX "ceph_primary_storage_mons_hostname" ON "ceph_primary_storage_mons" USING btree ("hostname");--> statement-breakpoint
CREATE UNIQUE INDEX "iscsi_primary_storage_hostname" ON "iscsi_primary_storage" USING btree ("hostname");