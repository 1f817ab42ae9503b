DROP INDEX IF EXISTS "tokens_revoked_expires_at_idx";--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tokens_revoked_access_expires_at_idx" ON "tokens" USING btree ("expires_at") WHERE "tokens"."revoked_at" is not null and "tokens"."type" = 'access';
