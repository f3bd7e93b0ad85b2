ALTER TABLE "hosts" ADD COLUMN "reserved_vm_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "hosts_reserved_vm_count_idx" ON "hosts" USING btree ("reserved_vm_count");--> statement-breakpoint
-- Hosts that already run VMs start from what they hold (the count follows reservations from now on).
UPDATE "hosts" SET "reserved_vm_count" = (SELECT count(*) FROM "vm_instances" WHERE "vm_instances"."host_uuid" = "hosts"."uuid");
