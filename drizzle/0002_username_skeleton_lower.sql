ALTER TABLE "users" ADD COLUMN "username_skeleton_lower" text;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_username_skeleton_lower_unique" UNIQUE("username_skeleton_lower");