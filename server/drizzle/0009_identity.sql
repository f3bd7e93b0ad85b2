CREATE TABLE "account_resource_refs" (
	"resource_uuid" text PRIMARY KEY NOT NULL,
	"resource_type" text NOT NULL,
	"account_uuid" text NOT NULL,
	"owner_account_uuid" text NOT NULL,
	"permission" integer DEFAULT 2 NOT NULL,
	"is_shared" boolean DEFAULT false NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "policies" (
	"uuid" text PRIMARY KEY NOT NULL,
	"account_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"statements" jsonb NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "quotas" (
	"uuid" text PRIMARY KEY NOT NULL,
	"identity_uuid" text NOT NULL,
	"identity_type" text DEFAULT 'AccountVO' NOT NULL,
	"name" text NOT NULL,
	"value" bigint NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quotas_identity_name_key" UNIQUE("identity_uuid","name")
);
--> statement-breakpoint
CREATE TABLE "shared_resources" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"owner_account_uuid" text NOT NULL,
	"receiver_account_uuid" text,
	"resource_uuid" text NOT NULL,
	"resource_type" text NOT NULL,
	"to_public" boolean DEFAULT false NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_group_policy_refs" (
	"group_uuid" text NOT NULL,
	"policy_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_group_policy_refs_group_uuid_policy_uuid_pk" PRIMARY KEY("group_uuid","policy_uuid")
);
--> statement-breakpoint
CREATE TABLE "user_group_user_refs" (
	"user_uuid" text NOT NULL,
	"group_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_group_user_refs_user_uuid_group_uuid_pk" PRIMARY KEY("user_uuid","group_uuid")
);
--> statement-breakpoint
CREATE TABLE "user_groups" (
	"uuid" text PRIMARY KEY NOT NULL,
	"account_uuid" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_policy_refs" (
	"user_uuid" text NOT NULL,
	"policy_uuid" text NOT NULL,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_policy_refs_user_uuid_policy_uuid_pk" PRIMARY KEY("user_uuid","policy_uuid")
);
--> statement-breakpoint
CREATE TABLE "users" (
	"uuid" text PRIMARY KEY NOT NULL,
	"account_uuid" text NOT NULL,
	"name" text NOT NULL,
	"password_hash" text NOT NULL,
	"description" text,
	"create_date" timestamp with time zone DEFAULT now() NOT NULL,
	"last_op_date" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_account_name_key" UNIQUE("account_uuid","name")
);
--> statement-breakpoint
ALTER TABLE "account_resource_refs" ADD CONSTRAINT "account_resource_refs_account_uuid_accounts_uuid_fk" FOREIGN KEY ("account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_account_uuid_accounts_uuid_fk" FOREIGN KEY ("account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "quotas" ADD CONSTRAINT "quotas_identity_uuid_accounts_uuid_fk" FOREIGN KEY ("identity_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shared_resources" ADD CONSTRAINT "shared_resources_owner_account_uuid_accounts_uuid_fk" FOREIGN KEY ("owner_account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shared_resources" ADD CONSTRAINT "shared_resources_receiver_account_uuid_accounts_uuid_fk" FOREIGN KEY ("receiver_account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_group_policy_refs" ADD CONSTRAINT "user_group_policy_refs_group_uuid_user_groups_uuid_fk" FOREIGN KEY ("group_uuid") REFERENCES "public"."user_groups"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_group_policy_refs" ADD CONSTRAINT "user_group_policy_refs_policy_uuid_policies_uuid_fk" FOREIGN KEY ("policy_uuid") REFERENCES "public"."policies"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_group_user_refs" ADD CONSTRAINT "user_group_user_refs_user_uuid_users_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_group_user_refs" ADD CONSTRAINT "user_group_user_refs_group_uuid_user_groups_uuid_fk" FOREIGN KEY ("group_uuid") REFERENCES "public"."user_groups"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_groups" ADD CONSTRAINT "user_groups_account_uuid_accounts_uuid_fk" FOREIGN KEY ("account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_policy_refs" ADD CONSTRAINT "user_policy_refs_user_uuid_users_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_policy_refs" ADD CONSTRAINT "user_policy_refs_policy_uuid_policies_uuid_fk" FOREIGN KEY ("policy_uuid") REFERENCES "public"."policies"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_account_uuid_accounts_uuid_fk" FOREIGN KEY ("account_uuid") REFERENCES "public"."accounts"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "account_resource_refs_account_idx" ON "account_resource_refs" USING btree ("account_uuid");--> statement-breakpoint
CREATE INDEX "policies_account_idx" ON "policies" USING btree ("account_uuid");--> statement-breakpoint
CREATE INDEX "shared_resources_receiver_idx" ON "shared_resources" USING btree ("receiver_account_uuid");--> statement-breakpoint
CREATE INDEX "shared_resources_resource_idx" ON "shared_resources" USING btree ("resource_uuid");--> statement-breakpoint
CREATE INDEX "user_groups_account_idx" ON "user_groups" USING btree ("account_uuid");