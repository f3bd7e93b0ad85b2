CREATE TABLE "clusters" (
	"uuid" text PRIMARY KEY NOT NULL,
	"zone_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"hypervisor_type" text NOT NULL,
	"type" text DEFAULT 'zstack' NOT NULL,
	"architecture" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "disk_offerings" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"disk_size" bigint NOT NULL,
	"sort_key" integer DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"type" text DEFAULT 'zstack' NOT NULL,
	"allocator_strategy" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "hosts" (
	"uuid" text PRIMARY KEY NOT NULL,
	"zone_uuid" text NOT NULL,
	"cluster_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"management_ip" text NOT NULL,
	"hypervisor_type" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text DEFAULT 'Connecting' NOT NULL,
	"architecture" text,
	"agent_url" text,
	"username" text,
	"ssh_port" integer,
	"credential" text,
	"host_key" text,
	"os_distribution" text,
	"os_release" text,
	"os_version" text,
	"cpu_num" integer DEFAULT 0 NOT NULL,
	"cpu_sockets" integer DEFAULT 1 NOT NULL,
	"total_cpu_capacity" bigint DEFAULT 0 NOT NULL,
	"available_cpu_capacity" bigint DEFAULT 0 NOT NULL,
	"total_memory_capacity" bigint DEFAULT 0 NOT NULL,
	"available_memory_capacity" bigint DEFAULT 0 NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instance_offerings" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"cpu_num" integer NOT NULL,
	"cpu_speed" integer DEFAULT 0 NOT NULL,
	"memory_size" bigint NOT NULL,
	"reserved_memory_size" bigint DEFAULT 0 NOT NULL,
	"type" text DEFAULT 'UserVm' NOT NULL,
	"allocator_strategy" text,
	"sort_key" integer DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"zone_uuid" text,
	"management_network_uuid" text,
	"public_network_uuid" text,
	"image_uuid" text,
	"is_default" boolean,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backup_storage" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"url" text NOT NULL,
	"type" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text DEFAULT 'Connecting' NOT NULL,
	"total_capacity" bigint DEFAULT 0 NOT NULL,
	"available_capacity" bigint DEFAULT 0 NOT NULL,
	"agent_url" text,
	"hostname" text,
	"username" text,
	"ssh_port" integer,
	"credential" text,
	"host_key" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backup_storage_zone_refs" (
	"backup_storage_uuid" text NOT NULL,
	"zone_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "backup_storage_zone_refs_backup_storage_uuid_zone_uuid_pk" PRIMARY KEY("backup_storage_uuid","zone_uuid")
);
--> statement-breakpoint
CREATE TABLE "image_backup_storage_refs" (
	"image_uuid" text NOT NULL,
	"backup_storage_uuid" text NOT NULL,
	"install_path" text,
	"status" text DEFAULT 'Downloading' NOT NULL,
	"export_md5_sum" text,
	"export_url" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "image_backup_storage_refs_image_uuid_backup_storage_uuid_pk" PRIMARY KEY("image_uuid","backup_storage_uuid")
);
--> statement-breakpoint
CREATE TABLE "images" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text DEFAULT 'Downloading' NOT NULL,
	"size" bigint DEFAULT 0 NOT NULL,
	"actual_size" bigint DEFAULT 0 NOT NULL,
	"md5_sum" text,
	"url" text NOT NULL,
	"media_type" text DEFAULT 'RootVolumeTemplate' NOT NULL,
	"guest_os_type" text,
	"type" text DEFAULT 'zstack' NOT NULL,
	"platform" text DEFAULT 'Linux' NOT NULL,
	"architecture" text,
	"format" text DEFAULT 'qcow2' NOT NULL,
	"system" boolean DEFAULT false NOT NULL,
	"virtio" boolean DEFAULT true NOT NULL,
	"progress" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "primary_storage" (
	"uuid" text PRIMARY KEY NOT NULL,
	"zone_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"url" text NOT NULL,
	"type" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text DEFAULT 'Connected' NOT NULL,
	"mount_path" text,
	"total_capacity" bigint DEFAULT 0 NOT NULL,
	"available_capacity" bigint DEFAULT 0 NOT NULL,
	"total_physical_capacity" bigint DEFAULT 0 NOT NULL,
	"available_physical_capacity" bigint DEFAULT 0 NOT NULL,
	"system_used_capacity" bigint DEFAULT 0 NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "primary_storage_cluster_refs" (
	"primary_storage_uuid" text NOT NULL,
	"cluster_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "primary_storage_cluster_refs_primary_storage_uuid_cluster_uuid_pk" PRIMARY KEY("primary_storage_uuid","cluster_uuid")
);
--> statement-breakpoint
CREATE TABLE "ip_ranges" (
	"uuid" text PRIMARY KEY NOT NULL,
	"l3_network_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"start_ip" text NOT NULL,
	"end_ip" text NOT NULL,
	"netmask" text NOT NULL,
	"gateway" text NOT NULL,
	"network_cidr" text NOT NULL,
	"ip_version" integer DEFAULT 4 NOT NULL,
	"ip_range_type" text DEFAULT 'Normal' NOT NULL,
	"start_int" bigint NOT NULL,
	"end_int" bigint NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "l2_network_cluster_refs" (
	"l2_network_uuid" text NOT NULL,
	"cluster_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "l2_network_cluster_refs_l2_network_uuid_cluster_uuid_pk" PRIMARY KEY("l2_network_uuid","cluster_uuid")
);
--> statement-breakpoint
CREATE TABLE "l2_networks" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"zone_uuid" text NOT NULL,
	"physical_interface" text NOT NULL,
	"type" text NOT NULL,
	"v_switch_type" text DEFAULT 'LinuxBridge' NOT NULL,
	"vlan" integer,
	"virtual_network_id" integer DEFAULT 0 NOT NULL,
	"isolated" boolean DEFAULT false NOT NULL,
	"pvlan" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "l3_network_dns" (
	"l3_network_uuid" text NOT NULL,
	"dns" text NOT NULL,
	"position" integer NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "l3_network_dns_l3_network_uuid_dns_pk" PRIMARY KEY("l3_network_uuid","dns")
);
--> statement-breakpoint
CREATE TABLE "l3_networks" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"type" text DEFAULT 'L3BasicNetwork' NOT NULL,
	"zone_uuid" text NOT NULL,
	"l2_network_uuid" text NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"dns_domain" text,
	"system" boolean DEFAULT false NOT NULL,
	"category" text DEFAULT 'Private' NOT NULL,
	"ip_version" integer DEFAULT 4 NOT NULL,
	"enable_ipam" boolean DEFAULT true NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "network_service_l3_refs" (
	"l3_network_uuid" text NOT NULL,
	"provider_uuid" text NOT NULL,
	"service_type" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "network_service_l3_refs_l3_network_uuid_service_type_pk" PRIMARY KEY("l3_network_uuid","service_type")
);
--> statement-breakpoint
CREATE TABLE "network_service_provider_l2_refs" (
	"provider_uuid" text NOT NULL,
	"l2_network_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "network_service_provider_l2_refs_provider_uuid_l2_network_uuid_pk" PRIMARY KEY("provider_uuid","l2_network_uuid")
);
--> statement-breakpoint
CREATE TABLE "network_service_providers" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"type" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "network_service_providers_type_unique" UNIQUE("type")
);
--> statement-breakpoint
CREATE TABLE "network_service_types" (
	"provider_uuid" text NOT NULL,
	"service_type" text NOT NULL,
	CONSTRAINT "network_service_types_provider_uuid_service_type_pk" PRIMARY KEY("provider_uuid","service_type")
);
--> statement-breakpoint
CREATE TABLE "used_ips" (
	"uuid" text PRIMARY KEY NOT NULL,
	"ip_range_uuid" text NOT NULL,
	"l3_network_uuid" text NOT NULL,
	"ip" text NOT NULL,
	"ip_in_long" bigint NOT NULL,
	"netmask" text NOT NULL,
	"gateway" text NOT NULL,
	"ip_version" integer DEFAULT 4 NOT NULL,
	"used_for" text NOT NULL,
	"vm_nic_uuid" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "vm_instances" (
	"uuid" text PRIMARY KEY NOT NULL,
	"internal_id" serial NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"zone_uuid" text,
	"cluster_uuid" text,
	"host_uuid" text,
	"last_host_uuid" text,
	"image_uuid" text,
	"instance_offering_uuid" text,
	"root_volume_uuid" text,
	"platform" text,
	"architecture" text,
	"guest_os_type" text,
	"default_l3_network_uuid" text,
	"type" text DEFAULT 'UserVm' NOT NULL,
	"hypervisor_type" text,
	"memory_size" bigint NOT NULL,
	"reserved_memory_size" bigint DEFAULT 0 NOT NULL,
	"cpu_num" integer NOT NULL,
	"cpu_speed" bigint DEFAULT 0 NOT NULL,
	"allocator_strategy" text,
	"state" text NOT NULL,
	"appliance_vm_type" text,
	"management_network_uuid" text,
	"public_network_uuid" text,
	"default_route_l3_network_uuid" text,
	"status" text,
	"agent_port" integer,
	"ha_status" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "vm_nics" (
	"uuid" text PRIMARY KEY NOT NULL,
	"vm_instance_uuid" text NOT NULL,
	"l3_network_uuid" text NOT NULL,
	"used_ip_uuid" text,
	"ip" text,
	"mac" text NOT NULL,
	"netmask" text,
	"gateway" text,
	"meta_data" text,
	"device_id" integer NOT NULL,
	"internal_name" text,
	"driver_type" text,
	"type" text DEFAULT 'VNIC' NOT NULL,
	"state" text DEFAULT 'enable' NOT NULL,
	"hypervisor_type" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "vm_nics_used_ip_uuid_unique" UNIQUE("used_ip_uuid"),
	CONSTRAINT "vm_nics_mac_unique" UNIQUE("mac")
);
--> statement-breakpoint
CREATE TABLE "volumes" (
	"uuid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"primary_storage_uuid" text,
	"vm_instance_uuid" text,
	"disk_offering_uuid" text,
	"root_image_uuid" text,
	"install_path" text,
	"type" text NOT NULL,
	"format" text DEFAULT 'qcow2' NOT NULL,
	"size" bigint NOT NULL,
	"actual_size" bigint DEFAULT 0 NOT NULL,
	"device_id" integer,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"status" text NOT NULL,
	"is_shareable" boolean DEFAULT false NOT NULL,
	"last_vm_instance_uuid" text,
	"last_detach_date" timestamp with time zone,
	"last_attach_date" timestamp with time zone,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "clusters" ADD CONSTRAINT "clusters_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hosts" ADD CONSTRAINT "hosts_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hosts" ADD CONSTRAINT "hosts_cluster_uuid_clusters_uuid_fk" FOREIGN KEY ("cluster_uuid") REFERENCES "public"."clusters"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_storage_zone_refs" ADD CONSTRAINT "backup_storage_zone_refs_backup_storage_uuid_backup_storage_uuid_fk" FOREIGN KEY ("backup_storage_uuid") REFERENCES "public"."backup_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_storage_zone_refs" ADD CONSTRAINT "backup_storage_zone_refs_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_backup_storage_refs" ADD CONSTRAINT "image_backup_storage_refs_image_uuid_images_uuid_fk" FOREIGN KEY ("image_uuid") REFERENCES "public"."images"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_backup_storage_refs" ADD CONSTRAINT "image_backup_storage_refs_backup_storage_uuid_backup_storage_uuid_fk" FOREIGN KEY ("backup_storage_uuid") REFERENCES "public"."backup_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "primary_storage" ADD CONSTRAINT "primary_storage_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "primary_storage_cluster_refs" ADD CONSTRAINT "primary_storage_cluster_refs_primary_storage_uuid_primary_storage_uuid_fk" FOREIGN KEY ("primary_storage_uuid") REFERENCES "public"."primary_storage"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "primary_storage_cluster_refs" ADD CONSTRAINT "primary_storage_cluster_refs_cluster_uuid_clusters_uuid_fk" FOREIGN KEY ("cluster_uuid") REFERENCES "public"."clusters"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ip_ranges" ADD CONSTRAINT "ip_ranges_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l2_network_cluster_refs" ADD CONSTRAINT "l2_network_cluster_refs_l2_network_uuid_l2_networks_uuid_fk" FOREIGN KEY ("l2_network_uuid") REFERENCES "public"."l2_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l2_network_cluster_refs" ADD CONSTRAINT "l2_network_cluster_refs_cluster_uuid_clusters_uuid_fk" FOREIGN KEY ("cluster_uuid") REFERENCES "public"."clusters"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l2_networks" ADD CONSTRAINT "l2_networks_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l3_network_dns" ADD CONSTRAINT "l3_network_dns_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l3_networks" ADD CONSTRAINT "l3_networks_zone_uuid_zones_uuid_fk" FOREIGN KEY ("zone_uuid") REFERENCES "public"."zones"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "l3_networks" ADD CONSTRAINT "l3_networks_l2_network_uuid_l2_networks_uuid_fk" FOREIGN KEY ("l2_network_uuid") REFERENCES "public"."l2_networks"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "network_service_l3_refs" ADD CONSTRAINT "network_service_l3_refs_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "network_service_l3_refs" ADD CONSTRAINT "network_service_l3_refs_provider_uuid_network_service_providers_uuid_fk" FOREIGN KEY ("provider_uuid") REFERENCES "public"."network_service_providers"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "network_service_provider_l2_refs" ADD CONSTRAINT "network_service_provider_l2_refs_provider_uuid_network_service_providers_uuid_fk" FOREIGN KEY ("provider_uuid") REFERENCES "public"."network_service_providers"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "network_service_provider_l2_refs" ADD CONSTRAINT "network_service_provider_l2_refs_l2_network_uuid_l2_networks_uuid_fk" FOREIGN KEY ("l2_network_uuid") REFERENCES "public"."l2_networks"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "network_service_types" ADD CONSTRAINT "network_service_types_provider_uuid_network_service_providers_uuid_fk" FOREIGN KEY ("provider_uuid") REFERENCES "public"."network_service_providers"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "used_ips" ADD CONSTRAINT "used_ips_ip_range_uuid_ip_ranges_uuid_fk" FOREIGN KEY ("ip_range_uuid") REFERENCES "public"."ip_ranges"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "used_ips" ADD CONSTRAINT "used_ips_l3_network_uuid_l3_networks_uuid_fk" FOREIGN KEY ("l3_network_uuid") REFERENCES "public"."l3_networks"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vm_nics" ADD CONSTRAINT "vm_nics_vm_instance_uuid_vm_instances_uuid_fk" FOREIGN KEY ("vm_instance_uuid") REFERENCES "public"."vm_instances"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "hosts_cluster_idx" ON "hosts" USING btree ("cluster_uuid");--> statement-breakpoint
CREATE INDEX "hosts_mgmt_ip_idx" ON "hosts" USING btree ("management_ip");--> statement-breakpoint
CREATE INDEX "ip_ranges_l3_idx" ON "ip_ranges" USING btree ("l3_network_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "used_ips_l3_ip_idx" ON "used_ips" USING btree ("l3_network_uuid","ip_in_long");--> statement-breakpoint
CREATE INDEX "used_ips_range_idx" ON "used_ips" USING btree ("ip_range_uuid");--> statement-breakpoint
CREATE INDEX "vm_instances_host_idx" ON "vm_instances" USING btree ("host_uuid");--> statement-breakpoint
CREATE INDEX "vm_instances_state_idx" ON "vm_instances" USING btree ("state");--> statement-breakpoint
CREATE INDEX "vm_instances_type_idx" ON "vm_instances" USING btree ("type");--> statement-breakpoint
CREATE INDEX "vm_nics_vm_idx" ON "vm_nics" USING btree ("vm_instance_uuid");--> statement-breakpoint
CREATE INDEX "vm_nics_l3_idx" ON "vm_nics" USING btree ("l3_network_uuid");--> statement-breakpoint
CREATE INDEX "vm_nics_ip_idx" ON "vm_nics" USING btree ("ip");--> statement-breakpoint
CREATE INDEX "volumes_vm_idx" ON "volumes" USING btree ("vm_instance_uuid");--> statement-breakpoint
CREATE INDEX "volumes_ps_idx" ON "volumes" USING btree ("primary_storage_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "volumes_vm_device_idx" ON "volumes" USING btree ("vm_instance_uuid","device_id");