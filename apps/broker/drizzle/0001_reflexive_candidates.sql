ALTER TABLE "devices" ADD COLUMN "net_candidates" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "mapping_type" text;