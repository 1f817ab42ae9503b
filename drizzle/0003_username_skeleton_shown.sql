ALTER TABLE "users" ADD COLUMN "username_skeleton_shown" text;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_username_skeleton_shown_unique" UNIQUE("username_skeleton_shown");