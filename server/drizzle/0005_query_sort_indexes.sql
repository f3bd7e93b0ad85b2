CREATE INDEX "vm_instances_created_idx" ON "vm_instances" USING btree ("create_date","uuid");--> statement-breakpoint
CREATE INDEX "vm_instances_host_created_idx" ON "vm_instances" USING btree ("host_uuid","create_date","uuid");--> statement-breakpoint
CREATE INDEX "volumes_created_idx" ON "volumes" USING btree ("create_date","uuid");