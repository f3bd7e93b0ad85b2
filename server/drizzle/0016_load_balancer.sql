CREATE TABLE "load_balancer_listener_vm_nic_refs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"listener_uuid" text NOT NULL,
	"vm_nic_uuid" text NOT NULL,
	"status" text DEFAULT 'Pending' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "load_balancer_listeners" (
	"uuid" text PRIMARY KEY NOT NULL,
	"load_balancer_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"instance_port" integer NOT NULL,
	"load_balancer_port" integer NOT NULL,
	"protocol" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "load_balancers" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"vip_uuid" text NOT NULL,
	"provider_type" text,
	"virtual_router_vm_uuid" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "load_balancer_listener_vm_nic_refs" ADD CONSTRAINT "load_balancer_listener_vm_nic_refs_listener_uuid_load_balancer_listeners_uuid_fk" FOREIGN KEY ("listener_uuid") REFERENCES "public"."load_balancer_listeners"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "load_balancer_listener_vm_nic_refs" ADD CONSTRAINT "load_balancer_listener_vm_nic_refs_vm_nic_uuid_vm_nics_uuid_fk" FOREIGN KEY ("vm_nic_uuid") REFERENCES "public"."vm_nics"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "load_balancer_listeners" ADD CONSTRAINT "load_balancer_listeners_load_balancer_uuid_load_balancers_uuid_fk" FOREIGN KEY ("load_balancer_uuid") REFERENCES "public"."load_balancers"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "load_balancers" ADD CONSTRAINT "load_balancers_vip_uuid_vips_uuid_fk" FOREIGN KEY ("vip_uuid") REFERENCES "public"."vips"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "load_balancers" ADD CONSTRAINT "load_balancers_virtual_router_vm_uuid_vm_instances_uuid_fk" FOREIGN KEY ("virtual_router_vm_uuid") REFERENCES "public"."vm_instances"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "load_balancer_nic_refs_listener_nic_idx" ON "load_balancer_listener_vm_nic_refs" USING btree ("listener_uuid","vm_nic_uuid");--> statement-breakpoint
CREATE INDEX "load_balancer_nic_refs_nic_idx" ON "load_balancer_listener_vm_nic_refs" USING btree ("vm_nic_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "load_balancer_listeners_lb_port_idx" ON "load_balancer_listeners" USING btree ("load_balancer_uuid","load_balancer_port");--> statement-breakpoint
CREATE UNIQUE INDEX "load_balancer_listeners_instance_port_idx" ON "load_balancer_listeners" USING btree ("load_balancer_uuid","instance_port");--> statement-breakpoint
CREATE UNIQUE INDEX "load_balancers_vip_idx" ON "load_balancers" USING btree ("vip_uuid");--> statement-breakpoint
CREATE INDEX "load_balancers_vr_idx" ON "load_balancers" USING btree ("virtual_router_vm_uuid");