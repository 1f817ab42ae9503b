import { eq, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import { LruMap } from 'toad-cache'
import { users } from '../src/db/schema.js'
import { toUser } from '../src/schemas.js'

/** What GET /auth/me/ answers. */
export type Profile = Readonly<ReturnType<typeof toUser>>

export interface UserOptions {
  /** How many profiles are kept in memory. */
  cacheSize?: number
  /** Milliseconds a cached profile is trusted. */
  cacheTtl?: number
}

export interface Users {
  /** The public profile of a user, from memory when it was read recently; undefined for no such user. */
  profile: (id: number) => Promise<Profile | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    users: Users
  }
}

/**
 * No route changes a username, an email or a join date, and users are never deleted, so a profile
 * read once stays true: /auth/me/ answers from memory instead of a query per request. The TTL
 * bounds how long an edit made by hand in the database goes unseen.
 */
export default fp<UserOptions>(async (fastify, { cacheSize = 10_000, cacheTtl = 60_000 }) => {
  const { db } = fastify
  const profiles = new LruMap<Profile>(cacheSize, cacheTtl)
  const byId = db.select({ id: users.id, username: users.username, email: users.email, createdAt: users.createdAt })
    .from(users).where(eq(users.id, sql.placeholder('id'))).prepare('user_profile')

  fastify.decorate('users', {
    async profile (id) {
      const cached = profiles.get(id)
      if (cached !== undefined) return cached
      const [row] = await byId.execute({ id })
      if (row === undefined) return undefined
      // Kept as answered, so that a request served from memory builds nothing; frozen, as every such request shares it.
      const profile = Object.freeze(toUser(row))
      profiles.set(id, profile)
      return profile
    }
  } satisfies Users)
}, { name: 'users', dependencies: ['db'] })
