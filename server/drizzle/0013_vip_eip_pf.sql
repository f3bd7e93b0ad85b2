CREATE TABLE "eips" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"vip_uuid" text NOT NULL,
	"vm_nic_uuid" text,
	"vip_ip" text NOT NULL,
	"guest_ip" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "port_forwarding_rules" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"vip_uuid" text NOT NULL,
	"vm_nic_uuid" text,
	"vip_ip" text NOT NULL,
	"guest_ip" text,
	"vip_port_start" integer NOT NULL,
	"vip_port_end" integer NOT NULL,
	"private_port_start" integer NOT NULL,
	"private_port_end" integer NOT NULL,
	"protocol_type" text NOT NULL,
	"allowed_cidr" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "vips" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"l3_network_uuid" text NOT NULL,
	"ip_range_uuid" text,
	"used_ip_uuid" text,
	"ip" text NOT NULL,
	"gateway" text NOT NULL,
	"netmask" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"service_provider" text,
	"peer_l3_network_uuid" text,
	"use_for" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "eips" ADD CONSTRAINT "eips_vip_uuid_vips_uuid_fk" FOREIGN KEY ("vip_uuid") REFERENCES "public"."vips"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "eips" ADD CONSTRAINT "eips_vm_nic_uuid_vm_nics_uuid_fk" FOREIGN KEY ("vm_nic_uuid") REFERENCES "public"."vm_nics"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "port_forwarding_rules" ADD CONSTRAINT "port_forwarding_rules_vip_uuid_vips_uuid_fk" FOREIGN KEY ("vip_uuid") REFERENCES "public"."vips"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "port_forwarding_rules" ADD CONSTRAINT "port_forwarding_rules_vm_nic_uuid_vm_nics_uuid_fk" FOREIGN KEY ("vm_nic_uuid") REFERENCES "public"."vm_nics"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vips" ADD CONSTRAINT "vips_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vips" ADD CONSTRAINT "vips_ip_range_uuid_ip_ranges_uuid_fk" FOREIGN KEY ("ip_range_uuid") REFERENCES "public"."ip_ranges"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vips" ADD CONSTRAINT "vips_used_ip_uuid_used_ips_uuid_fk" FOREIGN KEY ("used_ip_uuid") REFERENCES "public"."used_ips"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vips" ADD CONSTRAINT "vips_peer_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("peer_l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "eips_vip_idx" ON "eips" USING btree ("vip_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "eips_vm_nic_idx" ON "eips" USING btree ("vm_nic_uuid");--> statement-breakpoint
CREATE INDEX "port_forwarding_rules_vip_idx" ON "port_forwarding_rules" USING btree ("vip_uuid");--> statement-breakpoint
CREATE INDEX "port_forwarding_rules_vm_nic_idx" ON "port_forwarding_rules" USING btree ("vm_nic_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "vips_l3_ip_idx" ON "vips" USING btree ("l3_network_uuid","ip");--> statement-breakpoint
CREATE INDEX "vips_peer_l3_idx" ON "vips" USING btree ("peer_l3_network_uuid");