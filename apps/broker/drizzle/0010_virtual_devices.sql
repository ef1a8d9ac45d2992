ALTER TABLE "devices" ALTER COLUMN "public_key" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "released_addresses" ALTER COLUMN "public_key" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "via_device_id" uuid;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "lan_address" text;--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_via_device_id_devices_id_fk" FOREIGN KEY ("via_device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "devices_via_lan_uq" ON "devices" USING btree ("via_device_id","lan_address");--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_key_or_via_ck" CHECK (("devices"."via_device_id" is null) = ("devices"."public_key" is not null));--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_via_lan_ck" CHECK (("devices"."via_device_id" is null) = ("devices"."lan_address" is null));