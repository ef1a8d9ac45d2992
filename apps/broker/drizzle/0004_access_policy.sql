CREATE TABLE "policies" (
	"account_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"text" text NOT NULL,
	"applied_by" text NOT NULL,
	"rollback_of" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "policies_account_id_version_pk" PRIMARY KEY("account_id","version")
);
--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "tags" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "user_email" text;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "key_change" jsonb;--> statement-breakpoint
ALTER TABLE "setup_keys" ADD COLUMN "tags" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "setup_keys" ADD COLUMN "cidr" text;--> statement-breakpoint
ALTER TABLE "setup_keys" ADD COLUMN "created_by" uuid;--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "setup_keys" ADD CONSTRAINT "setup_keys_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;