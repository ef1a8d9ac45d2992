ALTER TABLE "accounts" ADD COLUMN "require_device_approval" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "approved" boolean DEFAULT true NOT NULL;