CREATE TABLE "device_routes" (
	"device_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"prefix" text NOT NULL,
	"advertised" boolean NOT NULL,
	"approved" boolean DEFAULT false NOT NULL,
	"auto_approved" boolean DEFAULT false NOT NULL,
	"down" boolean DEFAULT false NOT NULL,
	"advertised_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "device_routes" ADD CONSTRAINT "device_routes_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_routes" ADD CONSTRAINT "device_routes_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "device_routes_device_prefix_uq" ON "device_routes" USING btree ("device_id","prefix");--> statement-breakpoint
CREATE INDEX "device_routes_account_idx" ON "device_routes" USING btree ("account_id");