CREATE TABLE "console_proxies" (
	"uuid" text PRIMARY KEY NOT NULL,
	"vm_instance_uuid" text NOT NULL,
	"agent_uuid" text NOT NULL,
	"host_uuid" text,
	"session_uuid" text,
	"token" text NOT NULL,
	"target_hostname" text NOT NULL,
	"target_port" integer NOT NULL,
	"proxy_hostname" text NOT NULL,
	"proxy_port" integer NOT NULL,
	"scheme" text NOT NULL,
	"status" text DEFAULT 'Active' NOT NULL,
	"expired_date" timestamp with time zone NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "console_proxy_agents" (
	"uuid" text PRIMARY KEY NOT NULL,
	"description" text,
	"management_ip" text NOT NULL,
	"console_proxy_overridden_ip" text,
	"console_proxy_port" integer,
	"overridden_port" integer,
	"type" text DEFAULT 'ManagementServerConsoleProxy' NOT NULL,
	"status" text DEFAULT 'Connecting' NOT NULL,
	"state" text DEFAULT 'Enabled' NOT NULL,
	"deploy_mode" text DEFAULT 'spawn' NOT NULL,
	"agent_url" text,
	"secret" text,
	"scheme" text,
	"host_key" text,
	"last_error" jsonb,
	"reconnect_requested" integer DEFAULT 0 NOT NULL,
	"reconnect_handled" integer DEFAULT 0 NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "console_proxies" ADD CONSTRAINT "console_proxies_agent_uuid_console_proxy_agents_uuid_fk" FOREIGN KEY ("agent_uuid") REFERENCES "public"."console_proxy_agents"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "console_proxy_agents" ADD CONSTRAINT "console_proxy_agents_uuid_management_nodes_uuid_fk" FOREIGN KEY ("uuid") REFERENCES "public"."management_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "console_proxies_vm_idx" ON "console_proxies" USING btree ("vm_instance_uuid","status");--> statement-breakpoint
CREATE INDEX "console_proxies_agent_idx" ON "console_proxies" USING btree ("agent_uuid");