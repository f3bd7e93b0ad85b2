DROP INDEX "vm_instances_host_idx";--> statement-breakpoint
DROP INDEX "volumes_vm_idx";