CREATE TABLE "security_group_failure_hosts" (
	"host_uuid" text PRIMARY KEY NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "security_group_l3_refs" (
	"security_group_uuid" text NOT NULL,
	"l3_network_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "security_group_l3_refs_security_group_uuid_l3_network_uuid_pk" PRIMARY KEY("security_group_uuid","l3_network_uuid")
);
--> statement-breakpoint
CREATE TABLE "security_group_rules" (
	"uuid" text PRIMARY KEY NOT NULL,
	"security_group_uuid" text NOT NULL,
	"type" text NOT NULL,
	"protocol" text NOT NULL,
	"start_port" integer NOT NULL,
	"end_port" integer NOT NULL,
	"allowed_cidr" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "security_groups" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "vm_nic_security_group_refs" (
	"vm_nic_uuid" text NOT NULL,
	"security_group_uuid" text NOT NULL,
	"vm_instance_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "vm_nic_security_group_refs_vm_nic_uuid_security_group_uuid_pk" PRIMARY KEY("vm_nic_uuid","security_group_uuid")
);
--> statement-breakpoint
ALTER TABLE "security_group_failure_hosts" ADD CONSTRAINT "security_group_failure_hosts_host_uuid_hosts_uuid_fk" FOREIGN KEY ("host_uuid") REFERENCES "public"."hosts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "security_group_l3_refs" ADD CONSTRAINT "security_group_l3_refs_security_group_uuid_security_groups_uuid_fk" FOREIGN KEY ("security_group_uuid") REFERENCES "public"."security_groups"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "security_group_l3_refs" ADD CONSTRAINT "security_group_l3_refs_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "security_group_rules" ADD CONSTRAINT "security_group_rules_security_group_uuid_security_groups_uuid_fk" FOREIGN KEY ("security_group_uuid") REFERENCES "public"."security_groups"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vm_nic_security_group_refs" ADD CONSTRAINT "vm_nic_security_group_refs_vm_nic_uuid_vm_nics_uuid_fk" FOREIGN KEY ("vm_nic_uuid") REFERENCES "public"."vm_nics"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vm_nic_security_group_refs" ADD CONSTRAINT "vm_nic_security_group_refs_security_group_uuid_security_groups_uuid_fk" FOREIGN KEY ("security_group_uuid") REFERENCES "public"."security_groups"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "security_group_l3_refs_l3_idx" ON "security_group_l3_refs" USING btree ("l3_network_uuid");--> statement-breakpoint
CREATE INDEX "security_group_rules_sg_idx" ON "security_group_rules" USING btree ("security_group_uuid");--> statement-breakpoint
CREATE INDEX "vm_nic_security_group_refs_sg_idx" ON "vm_nic_security_group_refs" USING btree ("security_group_uuid");--> statement-breakpoint
CREATE INDEX "vm_nic_security_group_refs_vm_idx" ON "vm_nic_security_group_refs" USING btree ("vm_instance_uuid");