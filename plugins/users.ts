import { and, eq, gt, inArray, isNotNull, isNull, like, or, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import { LruMap } from 'toad-cache'
import { prepared, type Database } from '../src/db/connect.js'
import { users } from '../src/db/schema.js'
import { uniqueViolation } from '../src/db/unique-violation.js'
import { apiError, messages } from '../src/errors.js'
import { confusableKey, emailKey, lowerConfusableKey, normaliseEmail, shownConfusableKey, usernameKey } from '../src/identity.js'
import { toUser } from '../src/schemas.js'

/** What GET /auth/me/ answers. */
export type Profile = Readonly<ReturnType<typeof toUser>>

/** What a login or a password check needs of a user. */
export interface Credentials {
  id: number
  username: string
  email: string
  passwordHash: string
  emailVerified: boolean
  disabled: boolean
}

export interface NewUser {
  username: string
  email: string
  passwordHash: string
  /** Created by an operator who vouches for the address. */
  emailVerified?: boolean
  /** The admin API's cohort label. */
  tag?: string
}

/** What an operator sees of a user. */
export interface AccountRow {
  id: number
  username: string
  email: string
  emailVerified: boolean
  disabledAt: Date | null
  tag: string | null
  createdAt: Date
  lastLoginAt: Date | null
}

export interface AccountFilter {
  /** A prefix of the normalised username or email. */
  q?: string
  tag?: string
  disabled?: boolean
  limit: number
  /** Keyset pagination: only users whose id is greater. */
  after?: number
}

export interface UserOptions {
  /** How many profiles are kept in memory. */
  cacheSize?: number
  /** Milliseconds a cached profile is trusted. */
  cacheTtl?: number
}

/** The only code that reads or writes the users table. */
export interface UsersRepository {
  /** Stores a new user, its names normalised, within tx if given; throws 409 username_taken or email_taken. */
  create: (user: NewUser, tx?: Database) => Promise<Profile>
  /** The user a login names, by username or (with an `@`) by email, in any case; undefined for none. */
  findForLogin: (identifier: string) => Promise<Credentials | undefined>
  /** The credentials of a user by id; undefined for no such user. */
  findById: (id: number) => Promise<Credentials | undefined>
  /** The user of an email address, in any case; undefined for none. */
  findByEmail: (email: string) => Promise<Credentials | undefined>
  /**
   * Replaces a user's password hash. With `expected`, only while the stored hash is still that one
   * (compare-and-set); answers whether it was replaced.
   */
  setPasswordHash: (id: number, passwordHash: string, expected?: string, tx?: Database) => Promise<boolean>
  /** In tx: the user's email is verified, if it is still the address whose emailKey() is `emailKey`; answers whether it was. */
  markEmailVerified: (tx: Database, id: number, emailKey: string) => Promise<boolean>
  /** In tx: the user's email becomes `email`, verified; throws 409 email_taken when another user has it. */
  changeEmail: (tx: Database, id: number, email: string) => Promise<void>
  /** In tx: the user is disabled, or enabled again: 'changed'; 'unchanged' when it already was; 'missing' when there is no such user. */
  setDisabled: (tx: Database, id: number, disabled: boolean) => Promise<'changed' | 'unchanged' | 'missing'>
  /** In tx: deletes the user's row; its sessions, tokens and mailed tokens go with it. Answers whether there was one. */
  delete: (tx: Database, id: number) => Promise<boolean>
  /** Users matching the filter, by id. */
  search: (filter: AccountFilter) => Promise<AccountRow[]>
  /** What an operator sees of one user; undefined for none. */
  account: (id: number) => Promise<AccountRow | undefined>
  /**
   * Changes a user's username, email or its verification, with the uniqueness of registration (409
   * username_taken or email_taken); a new email is unverified unless `emailVerified` says otherwise. False for
   * no such user.
   */
  update: (id: number, changes: { username?: string, email?: string, emailVerified?: boolean }, tx?: Database) => Promise<boolean>
  /** Up to `limit` users of a cohort. */
  cohort: (tag: string, limit: number) => Promise<Array<{ id: number, email: string }>>
  /** In tx: deletes these users' rows; answers how many. */
  deleteMany: (tx: Database, ids: number[]) => Promise<number>
  /** The public profile of a user, from memory when it was read recently; undefined for no such user. */
  profile: (id: number) => Promise<Profile | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
  }
}

/** The account key a login identifier is matched on: the email's, when it has an `@`, else the username's. */
export const accountKey = (identifier: string) => identifier.includes('@') ? emailKey(identifier) : usernameKey(identifier)

const lookalikeConstraints = new Set(['users_username_skeleton_unique', 'users_username_skeleton_lower_unique', 'users_username_skeleton_shown_unique'])

/** A unique violation as the 409 it means; any other error as it is. */
function takenError (error: unknown): unknown {
  const constraint = uniqueViolation(error)
  // A name that looks like a taken one is taken: a user cannot tell ꓮꓓꓟꓲꓠ from ADMIN.
  if (constraint !== undefined && usernameConstraints.has(constraint)) return apiError(409, 'username_taken', messages.usernameTaken)
  if (constraint === 'users_email_key_unique') return apiError(409, 'email_taken', messages.emailTaken)
  return error
}

/** The confusable skeletons of a name, one unique column each: a new name may share none of them. */
const lookalikeKeys = (username: string) => ({
  usernameSkeleton: confusableKey(username),
  usernameSkeletonLower: lowerConfusableKey(username),
  usernameSkeletonShown: shownConfusableKey(username)
})
const usernameConstraints = new Set(['users_username_key_unique', ...lookalikeConstraints])

/**
 * Gives users registered before username_skeleton existed their confusable key, a batch at a time. Of two such
 * users whose names look alike, the later keeps none (and is logged): both keep their names, and no new name
 * may look like either.
 */
export async function fillConfusableKeys (db: Database, log: { warn: (object: object, message: string) => void }): Promise<void> {
  let after = 0
  for (;;) {
    const rows = await db.select({ id: users.id, username: users.username }).from(users)
      .where(and(or(isNull(users.usernameSkeleton), isNull(users.usernameSkeletonLower), isNull(users.usernameSkeletonShown)), gt(users.id, after))).orderBy(users.id).limit(1000)
    if (rows.length === 0) return
    for (const row of rows) {
      try {
        await db.update(users).set(lookalikeKeys(row.username)).where(eq(users.id, row.id))
      } catch (error) {
        /* c8 ignore next: any other failure is the database's, and fails the start */
        if (!lookalikeConstraints.has(uniqueViolation(error) ?? '')) throw error
        log.warn({ userId: row.id }, 'username looks like another user\'s: left without a confusable key')
      }
      after = row.id
    }
  }
}

/**
 * A profile changes only by an email change or verification, which drop it from this instance's memory, so
 * /auth/me/ answers from memory instead of a query per request. The TTL bounds how long a change made on
 * another instance, or by hand in the database, goes unseen here.
 */
export default fp<UserOptions>(async (fastify, { cacheSize = 10_000, cacheTtl = 60_000 }) => {
  const { db } = fastify
  const profiles = new LruMap<Profile>(cacheSize, cacheTtl)
  const profileColumns = { id: users.id, username: users.username, email: users.email, emailVerified: users.emailVerified, createdAt: users.createdAt }
  const profileById = db.select(profileColumns)
    .from(users).where(eq(users.id, sql.placeholder('id'))).prepare('user_profile')
  const credentials = { id: users.id, username: users.username, email: users.email, passwordHash: users.passwordHash, emailVerified: users.emailVerified, disabled: sql<boolean>`${users.disabledAt} is not null` }

  const accountColumns = {
    id: users.id,
    username: users.username,
    email: users.email,
    emailVerified: users.emailVerified,
    disabledAt: users.disabledAt,
    tag: users.tag,
    createdAt: users.createdAt,
    lastLoginAt: users.lastLoginAt
  }

  const repository: UsersRepository = {
    async create (user, tx = db) {
      try {
        const [row] = await prepared(tx.insert(users).values({
          username: user.username.normalize('NFKC'),
          usernameKey: usernameKey(user.username),
          ...lookalikeKeys(user.username),
          email: normaliseEmail(user.email),
          emailKey: emailKey(user.email),
          passwordHash: user.passwordHash,
          emailVerified: user.emailVerified ?? false,
          tag: user.tag
        }).returning(profileColumns))
        return toUser(row!)
      } catch (error) {
        // The unique indexes decide, so racing registrations of one name get exactly one 201.
        throw takenError(error)
      }
    },

    async findForLogin (identifier) {
      // PostgreSQL text cannot hold NUL, and no registered name or email contains one.
      if (identifier.includes('\0')) return undefined
      const key = accountKey(identifier)
      const [user] = await prepared(db.select(credentials).from(users)
        .where(identifier.includes('@') ? eq(users.emailKey, key) : eq(users.usernameKey, key)))
      return user
    },

    async findById (id) {
      const [user] = await prepared(db.select(credentials).from(users).where(eq(users.id, id)))
      return user
    },

    async findByEmail (email) {
      if (email.includes('\0')) return undefined
      const [user] = await prepared(db.select(credentials).from(users).where(eq(users.emailKey, emailKey(email))))
      return user
    },

    async setPasswordHash (id, passwordHash, expected, tx = db) {
      const where = expected === undefined ? eq(users.id, id) : and(eq(users.id, id), eq(users.passwordHash, expected))
      const updated = await tx.update(users).set({ passwordHash }).where(where).returning({ id: users.id })
      return updated.length > 0
    },

    async markEmailVerified (tx, id, key) {
      const updated = await tx.update(users).set({ emailVerified: true })
        .where(and(eq(users.id, id), eq(users.emailKey, key))).returning({ id: users.id })
      profiles.delete(id)
      return updated.length > 0
    },

    async changeEmail (tx, id, email) {
      try {
        await tx.update(users).set({ email: normaliseEmail(email), emailKey: emailKey(email), emailVerified: true }).where(eq(users.id, id))
      } catch (error) {
        throw takenError(error)
      }
      profiles.delete(id)
    },

    async setDisabled (tx, id, disabled) {
      // Locked, so that of two racing requests to disable, one changes the row and the other finds it changed.
      const [row] = await tx.select({ disabledAt: users.disabledAt }).from(users).where(eq(users.id, id)).for('update')
      if (row === undefined) return 'missing'
      if ((row.disabledAt !== null) === disabled) return 'unchanged'
      await tx.update(users).set({ disabledAt: disabled ? sql`now()` : null }).where(eq(users.id, id))
      return 'changed'
    },

    async delete (tx, id) {
      const deleted = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id })
      profiles.delete(id)
      return deleted.length > 0
    },

    search ({ q, tag, disabled, limit, after }) {
      const prefix = (key: string) => `${key.replace(/[\\%_]/g, '\\$&')}%`
      return db.select(accountColumns).from(users).where(and(
        after === undefined ? undefined : gt(users.id, after),
        q === undefined ? undefined : or(like(users.usernameKey, prefix(usernameKey(q))), like(users.emailKey, prefix(emailKey(q)))),
        tag === undefined ? undefined : eq(users.tag, tag),
        disabled === undefined ? undefined : disabled ? isNotNull(users.disabledAt) : isNull(users.disabledAt)
      )).orderBy(users.id).limit(limit)
    },

    async account (id) {
      const [row] = await db.select(accountColumns).from(users).where(eq(users.id, id))
      return row
    },

    async update (id, { username, email, emailVerified }, tx = db) {
      const changes = {
        ...(username === undefined ? {} : { username: username.normalize('NFKC'), usernameKey: usernameKey(username), ...lookalikeKeys(username) }),
        ...(email === undefined ? {} : { email: normaliseEmail(email), emailKey: emailKey(email), emailVerified: false }),
        ...(emailVerified === undefined ? {} : { emailVerified })
      }
      if (Object.keys(changes).length === 0) return (await tx.select({ id: users.id }).from(users).where(eq(users.id, id))).length > 0
      try {
        const updated = await tx.update(users).set(changes).where(eq(users.id, id)).returning({ id: users.id })
        profiles.delete(id)
        return updated.length > 0
      } catch (error) {
        throw takenError(error)
      }
    },

    cohort (tag, limit) {
      return db.select({ id: users.id, email: users.email }).from(users).where(eq(users.tag, tag)).orderBy(users.id).limit(limit)
    },

    async deleteMany (tx, ids) {
      const deleted = await tx.delete(users).where(inArray(users.id, ids)).returning({ id: users.id })
      for (const { id } of deleted) profiles.delete(id)
      return deleted.length
    },

    async profile (id) {
      const cached = profiles.get(id)
      if (cached !== undefined) return cached
      const [row] = await profileById.execute({ id })
      if (row === undefined) return undefined
      // Kept as answered, so that a request served from memory builds nothing; frozen, as every such request shares it.
      const profile = Object.freeze(toUser(row))
      profiles.set(id, profile)
      return profile
    }
  }

  fastify.decorate('usersRepository', repository)
  await fillConfusableKeys(db, fastify.log)
}, { name: 'users', dependencies: ['db'] })
