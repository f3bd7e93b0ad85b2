-- Databases where concurrent creations left several default virtual router offerings in a zone keep the newest.
UPDATE "instance_offerings" o SET "is_default" = false
 WHERE o."is_default" AND o."type" = 'VirtualRouter'
   AND EXISTS (SELECT 1 FROM "instance_offerings" n WHERE n."is_default" AND n."type" = 'VirtualRouter' AND n."zone_uuid" = o."zone_uuid"
                  AND (n."create_date", n."uuid") > (o."create_date", o."uuid"));--> statement-breakpoint
CREATE UNIQUE INDEX "instance_offerings_default_vr_idx" ON "instance_offerings" USING btree ("zone_uuid") WHERE "instance_offerings"."is_default" AND "instance_offerings"."type" = 'VirtualRouter';
