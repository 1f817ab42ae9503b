import { createHmac, hkdfSync, randomBytes, randomInt, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto'
import { and, desc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import { prepared, type Database } from '../src/db/connect.js'
import { mailTokens, type mailTokenKinds } from '../src/db/schema.js'
import { fieldErrors, messages } from '../src/errors.js'
import { emailKey, normaliseEmail } from '../src/identity.js'
import { sha256 } from './tokens.js'

export type MailTokenKind = typeof mailTokenKinds[number]
export type MailTokenRow = typeof mailTokens.$inferSelect

export interface MailTokenOptions {
  /** The JWT signing key: the codes' HMAC key is derived from it, so it is in no database row. */
  signingKey: KeyObject
}

/** A token as mailed: the link token and the code, which exist nowhere else once the mail is sent. */
export interface IssuedMailToken {
  id: string
  token: string
  code: string
  expiresAt: Date
  codeExpiresAt: Date
}

/** How proof of a mail comes back: its link token, or the address it went to and its code. */
export type MailProof = { token: string } | { email: string, code: string }

/** The proof a confirmation body holds: its token, else its email and code; a 400 without either. */
export function mailedProof (body: { token?: string, email?: string, code?: string }): MailProof {
  if (body.token !== undefined) return { token: body.token }
  if (body.email !== undefined && body.code !== undefined) return { email: body.email, code: body.code }
  const missing = body.email === undefined ? ['token', 'email'] : ['code']
  throw fieldErrors(Object.fromEntries(missing.map((field) => [field, [messages.proofRequired]])))
}

/** The 400 for a wrong, expired, used or dead proof, on the field it came in. */
export const proofError = (proof: MailProof) => 'token' in proof
  ? fieldErrors({ token: [messages.mailTokenInvalid] })
  : fieldErrors({ code: [messages.mailCodeInvalid] })

/** Wrong codes one issued code accepts; the next attempt finds it dead. */
export const codeAttempts = 5
/** A 6-digit code is typed, not clicked: it lasts at most this long, in seconds, whatever its token's lifetime. */
export const codeLifetime = 15 * 60

/**
 * Tokens mailed to users, for a password reset, an email verification or an email change. Each is a link
 * token (32 random bytes, stored as SHA-256) and a 6-digit code (stored as an HMAC under a key that is not in
 * the database), either of which proves the mail was read; using one uses both.
 */
export interface MailTokens {
  /** In tx: a new token for the user, mailed to `email`; the older live ones of its kind are dead. */
  issue: (tx: Database, userId: number, kind: MailTokenKind, email: string, ttlSeconds: number) => Promise<IssuedMailToken>
  /**
   * The live token a proof names, not yet used. A wrong code counts against every live code sent to that address;
   * undefined for a wrong, expired, used or dead proof.
   */
  find: (kind: MailTokenKind, proof: MailProof) => Promise<MailTokenRow | undefined>
  /** In tx: uses the token found by find(), if it is still live: of racing uses, exactly one gets true. */
  consume: (tx: Database, token: MailTokenRow) => Promise<boolean>
  /** In tx: every live token of the user of these kinds is dead. */
  killAll: (tx: Database, userId: number, kinds: MailTokenKind[]) => Promise<void>
  /**
   * In tx: serialises the mail requests of one user until tx ends, then answers when the tokens of this kind
   * issued to it within the last `windowMs` milliseconds were issued, newest first.
   */
  issuedWithin: (tx: Database, userId: number, kind: MailTokenKind, windowMs: number) => Promise<Date[]>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailTokens: MailTokens
  }
}

/** pg_advisory_xact_lock's first key: this plugin's locks, one per user. */
const lockSpace = 0x6d61696c

const killQuery = (tx: Database, userId: number, kinds: MailTokenKind[], now: Date) =>
  tx.update(mailTokens).set({ consumedAt: now }).where(and(eq(mailTokens.userId, userId), inArray(mailTokens.kind, kinds), isNull(mailTokens.consumedAt)))

export function createMailTokens (db: Database, { signingKey }: MailTokenOptions): MailTokens {
  const secret = Buffer.from(hkdfSync('sha256', signingKey.export({ format: 'der', type: 'pkcs8' }), '', 'auth-service mail codes', 32))
  // Over the id too: the same code of two tokens has two digests, and none can be looked up in a table of a million.
  const codeHmac = (id: string, code: string) => createHmac('sha256', secret).update(`${id}:${code}`).digest('hex')
  const sameHmac = (stored: string, computed: string) => timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(computed, 'hex'))
  const live = (now: Date) => and(isNull(mailTokens.consumedAt), gt(mailTokens.expiresAt, now))
  const liveCode = (now: Date) => and(live(now), gt(mailTokens.codeExpiresAt, now), lt(mailTokens.codeAttempts, codeAttempts))

  return {
    async issue (tx, userId, kind, email, ttlSeconds) {
      const id = randomUUID()
      const token = randomBytes(32).toString('base64url')
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0')
      const createdAt = new Date()
      const expiresAt = new Date(createdAt.getTime() + ttlSeconds * 1000)
      const codeExpiresAt = new Date(createdAt.getTime() + Math.min(ttlSeconds, codeLifetime) * 1000)
      // The user's earlier tokens of this kind die as this one is stored, in one statement.
      const insert = tx.insert(mailTokens).values({ id, userId, kind, email: normaliseEmail(email), emailKey: emailKey(email), tokenHash: sha256(token), codeHmac: codeHmac(id, code), createdAt, expiresAt, codeExpiresAt })
      await tx.execute(sql`with killed as (${killQuery(tx, userId, [kind], createdAt).getSQL()}) ${insert.getSQL()}`)
      return { id, token, code, expiresAt, codeExpiresAt }
    },

    async find (kind, proof) {
      const now = new Date()
      if ('token' in proof) {
        const [row] = await prepared(db.select().from(mailTokens)
          .where(and(eq(mailTokens.tokenHash, sha256(proof.token)), eq(mailTokens.kind, kind), live(now))))
        return row
      }
      // PostgreSQL text cannot hold NUL, and no address contains one.
      if (proof.email.includes('\0')) return undefined
      // Several users may be changing to one new address: each of their codes is tried.
      const candidates = await db.select().from(mailTokens)
        .where(and(eq(mailTokens.emailKey, emailKey(proof.email)), eq(mailTokens.kind, kind), liveCode(now)))
        .orderBy(desc(mailTokens.createdAt)).limit(10)
      const match = candidates.find((row) => sameHmac(row.codeHmac, codeHmac(row.id, proof.code)))
      if (match !== undefined) return match
      if (candidates.length > 0) {
        await db.update(mailTokens).set({ codeAttempts: sql`${mailTokens.codeAttempts} + 1` })
          .where(inArray(mailTokens.id, candidates.map((row) => row.id)))
      }
      return undefined
    },

    async consume (tx, token) {
      const now = new Date()
      const used = await tx.update(mailTokens).set({ consumedAt: now })
        .where(and(eq(mailTokens.id, token.id), live(now))).returning({ id: mailTokens.id })
      return used.length > 0
    },

    async killAll (tx, userId, kinds) {
      await killQuery(tx, userId, kinds, new Date())
    },

    async issuedWithin (tx, userId, kind, windowMs) {
      await tx.execute(sql`select pg_advisory_xact_lock(${lockSpace}, ${userId})`)
      const rows = await tx.select({ createdAt: mailTokens.createdAt }).from(mailTokens).where(and(
        eq(mailTokens.userId, userId), eq(mailTokens.kind, kind), gt(mailTokens.createdAt, new Date(Date.now() - windowMs))))
        .orderBy(desc(mailTokens.createdAt))
      return rows.map((row) => row.createdAt)
    }
  }
}

export default fp<MailTokenOptions>(async (fastify, options) => {
  fastify.decorate('mailTokens', createMailTokens(fastify.db, options))
}, { name: 'mail-tokens', dependencies: ['db'] })
