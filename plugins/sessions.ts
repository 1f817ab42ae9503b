import { randomUUID } from 'node:crypto'
import { and, desc, eq, gt, inArray, isNull, max, ne, type SQL } from 'drizzle-orm'
import fp from 'fastify-plugin'
import { prepared, type Database } from '../src/db/connect.js'
import { rotateRefresh } from '../src/db/rotate-refresh.js'
import { startSession } from '../src/db/start-session.js'
import { clientKey } from '../src/client-address.js'
import { importedUsers, legacyRevokedJtis, revokedSessions, sessions, tokens } from '../src/db/schema.js'
import { messages, tokenError } from '../src/errors.js'
import type { LegacyJwtConfig } from '../src/config.js'
import { legacyRefreshReader, type LegacyRefresh } from '../src/legacy-jwt.js'
import { sha256, toPair, type TokenClaims, type TokenPair, type UserRef } from './tokens.js'

export interface SessionOptions {
  /** Seconds from login after which a session can no longer be refreshed. */
  sessionMaxAge: number
  /** Seconds during which a rotated refresh token gets its replacement again; 0 turns this off. */
  refreshReuseGrace: number
  /** The SimpleJWT cutover window: the old service's refresh tokens are exchanged for sessions. */
  legacyJwt?: LegacyJwtConfig
}

export interface ClientInfo {
  userAgent?: string
  ip?: string
}

export type SessionRow = typeof sessions.$inferSelect

export interface Refreshed {
  pair: TokenPair
  /** Within the grace window: the replacement handed out before, again. */
  replayed: boolean
  /** The presented token's. */
  claims: TokenClaims
}

export interface SessionManager {
  /**
   * Opens a session for a user who just proved who they are with the password whose hash is `passwordHash`;
   * undefined when that is no longer the user's password (changed since it was checked), or the user was deleted
   * or disabled meanwhile.
   */
  start: (user: UserRef, client: ClientInfo, passwordHash: string) => Promise<{ pair: TokenPair, sessionId: string } | undefined>
  /**
   * Rotates a refresh token. Presented again within the grace window, it gets the same new refresh
   * token; after that, it is reuse: the whole session is revoked and 401 token_reused thrown. During the SimpleJWT
   * cutover window, a refresh token of the old service opens a session, as the first refresh token of which it is
   * then rotated, under the same rules.
   */
  refresh: (refreshToken: string, client: ClientInfo) => Promise<Refreshed>
  /** Revokes the session of a refresh token. */
  logout: (refreshToken: string) => Promise<void>
  /** The user's sessions that are neither revoked nor expired, newest first. */
  list: (userId: number) => Promise<SessionRow[]>
  /** Revokes one session of the user; false when the user has no such live session. */
  revoke: (userId: number, sessionId: string) => Promise<boolean>
  /** Revokes every session of the user, but the one given; answers how many. */
  revokeAll: (userId: number, except?: string) => Promise<number>
  /**
   * In tx: revokes every session of the user, every instance told when tx commits; answers their ids, which the
   * caller hands to revocations.remember() once tx has committed, for this instance to refuse them at once.
   */
  revokeAllIn: (tx: Database, userId: number) => Promise<string[]>
  /**
   * In tx, before the users' rows are deleted (and their sessions and tokens with them): every session whose access
   * tokens may still be presented is kept as a tombstone, an id and an expiry, until they have all expired, and
   * every instance is told on commit. Answers the ids, for revocations.remember() once tx has committed.
   */
  tombstoneAll: (tx: Database, userIds: number[]) => Promise<string[]>
  /**
   * The username of a live refresh token's user, for verify and introspect; throws a 401 otherwise. A rotated
   * token is token_revoked within the grace window, and past it is reuse, as at refresh: the whole session is
   * revoked and token_reused thrown, so that nobody can test quietly which stolen token is still live.
   */
  inspectRefresh: (claims: TokenClaims, refreshToken: string) => Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionManager: SessionManager
  }
}

export default fp<SessionOptions>(async (fastify, options) => {
  const { db, sqlQuery, tokenService, revocations, usersRepository, webhooks } = fastify
  const revokedError = () => tokenError('token_revoked', messages.tokenRevoked)
  const invalidError = () => tokenError('token_invalid', messages.tokenInvalid)

  /** The user a token names, with the username that tokens carry; undefined once the user is gone. */
  async function findUser (claims: TokenClaims): Promise<UserRef | undefined> {
    const profile = await usersRepository.profile(claims.user_id)
    return profile === undefined ? undefined : { id: profile.id, username: profile.username, emailVerified: profile.email_verified }
  }

  /** The same, or a 401. */
  async function userOf (claims: TokenClaims): Promise<UserRef> {
    const user = await findUser(claims)
    if (user === undefined) throw invalidError()
    return user
  }

  /**
   * Revokes the live sessions matched, with every token issued in them; tells every instance on
   * commit. Like every path here it locks session rows before token rows, so no two deadlock.
   */
  async function revokeWhere (tx: Database, where: SQL | undefined): Promise<string[]> {
    const now = new Date()
    const revoked = await tx.update(sessions).set({ revokedAt: now })
      .where(and(where, isNull(sessions.revokedAt))).returning({ id: sessions.id, userId: sessions.userId })
    const ids = revoked.map((row) => row.id)
    if (ids.length > 0) {
      const justRevoked = tx.select({ id: sessions.id }).from(sessions).where(and(where, eq(sessions.revokedAt, now)))
      await tx.update(tokens).set({ revokedAt: now }).where(and(inArray(tokens.sessionId, justRevoked), isNull(tokens.revokedAt)))
      await revocations.publish(tx, ids)
      const byUser = new Map<number, string[]>()
      for (const row of revoked) byUser.set(row.userId, [...byUser.get(row.userId) ?? [], row.id])
      await webhooks.enqueueAll(tx, [...byUser].map(([userId, sessionIds]) => ({ type: 'session.revoked', data: { user_id: userId, session_ids: sessionIds }, userId })))
    }
    return ids
  }

  /**
   * In tx: every session of an imported user is being revoked; so are the old service's refresh tokens not presented
   * yet, which have no session here to revoke: those issued before now open none (recorded with or without a
   * cutover window, which may open later).
   */
  async function revokeLegacyTokens (tx: Database, userId: number): Promise<void> {
    await tx.update(importedUsers).set({ legacyTokensRevokedAt: new Date() }).where(eq(importedUsers.id, userId))
  }

  async function revokeSessions (where: SQL | undefined): Promise<string[]> {
    const ids = await db.transaction((tx) => revokeWhere(tx, where))
    revocations.remember(ids)
    return ids
  }

  /**
   * Locks the session of a presented refresh token, then the token's row, and reads both after
   * the locks are held: every refresh, logout and revocation of a session is serialised on it.
   */
  async function lockRefreshToken (tx: Database, refreshToken: string, claims: TokenClaims) {
    const [session] = await prepared(tx.select({ createdAt: sessions.createdAt, revokedAt: sessions.revokedAt, ip: sessions.ip, userAgent: sessions.userAgent })
      .from(sessions).where(eq(sessions.id, claims.sid)).for('update'))
    const [row] = await prepared(tx
      .select({ tokenHash: tokens.tokenHash, revokedAt: tokens.revokedAt, replacedBy: tokens.replacedBy })
      .from(tokens)
      .where(and(eq(tokens.jti, claims.jti), eq(tokens.sessionId, claims.sid)))
      .for('update'))
    if (session === undefined || row === undefined || row.tokenHash !== sha256(refreshToken)) throw invalidError()
    if (session.revokedAt !== null) throw revokedError()
    return { ...row, session }
  }

  const readLegacy = options.legacyJwt === undefined ? undefined : legacyRefreshReader(options.legacyJwt)

  /**
   * The claims a legacy refresh token stands for here; a 401 when its user was not imported (an id of the old service
   * may be a user who registered here), is gone or disabled, or when the old service had blacklisted it.
   */
  async function legacyClaims (legacy: LegacyRefresh): Promise<TokenClaims> {
    const [user, [imported], [blacklisted]] = await Promise.all([
      usersRepository.findById(legacy.userId),
      db.select({ revokedAt: importedUsers.legacyTokensRevokedAt }).from(importedUsers).where(eq(importedUsers.id, legacy.userId)),
      db.select({ hash: legacyRevokedJtis.jtiHash }).from(legacyRevokedJtis).where(eq(legacyRevokedJtis.jtiHash, legacy.jtiHash))
    ])
    if (user === undefined || imported === undefined) throw invalidError()
    // iat is in whole seconds: a token of the very second of a revocation counts as before it.
    const revokedSince = imported.revokedAt !== null && legacy.issuedAt.getTime() <= imported.revokedAt.getTime()
    if (user.disabled || blacklisted !== undefined || revokedSince) throw revokedError()
    const [iat, exp] = [legacy.issuedAt.getTime() / 1000, legacy.expiresAt.getTime() / 1000]
    return { sub: String(legacy.userId), user_id: legacy.userId, sid: legacy.sid, jti: legacy.jti, token_type: 'refresh', iat, exp, iss: '', aud: '' }
  }

  /**
   * In tx: the session of a legacy refresh token, and the token as its first refresh token (its digest only), made
   * at its first presentation; at any later one (or a racing first one) they exist already, and are left as they are.
   */
  async function adoptLegacy (tx: Database, legacy: LegacyRefresh, refreshToken: string, client: ClientInfo): Promise<void> {
    const now = new Date()
    const [opened] = await tx.insert(sessions).values({ id: legacy.sid, userId: legacy.userId, createdAt: now, lastUsedAt: now, expiresAt: legacy.expiresAt, ...recorded(client) })
      .onConflictDoNothing().returning({ id: sessions.id })
    if (opened === undefined) return
    await tx.insert(tokens).values({ jti: legacy.jti, userId: legacy.userId, sessionId: legacy.sid, type: 'refresh', tokenHash: sha256(refreshToken), createdAt: legacy.issuedAt, expiresAt: legacy.expiresAt })
  }

  /** As the session records its client: its user agent cut to 512 characters. */
  const recorded = (client: ClientInfo) => ({ userAgent: client.userAgent?.slice(0, 512) ?? null, ip: client.ip ?? null })

  /**
   * The rotation of a live refresh token, the common case, in one statement (src/db/rotate-refresh.ts); undefined
   * for any other (rotated already, revoked, unknown, expired, its session too near its end, its user gone), which
   * refresh() then answers on its full path. The signature is not checked: the token's SHA-256 found among the
   * tokens issued proves more, and the Ed25519 check would cost a fifth of the rotation's CPU.
   */
  async function rotateLive (refreshToken: string, client: ClientInfo): Promise<Refreshed | undefined> {
    const claims = tokenService.readRefresh(refreshToken)
    const user = claims === undefined ? undefined : await findUser(claims)
    if (claims === undefined || user === undefined) return undefined
    const refresh = tokenService.signRefresh(user, claims.sid, undefined)
    const access = tokenService.signAccess(user, claims.sid)
    const rotated = await rotateRefresh(sqlQuery, {
      sessionId: claims.sid,
      jti: claims.jti,
      tokenHash: sha256(refreshToken),
      // A session that would end before the new refresh token expires takes the full path, which caps its exp.
      startedAfter: new Date(refresh.row.expiresAt.getTime() - options.sessionMaxAge * 1000),
      now: new Date(),
      refresh: refresh.row,
      access: access.row,
      ...recorded(client)
    })
    return rotated ? { pair: toPair(access, refresh), replayed: false, claims } : undefined
  }

  type RefreshOutcome = { pair: TokenPair, replayed: boolean } | { reused: true }

  /** After the session of a reused refresh token was revoked: tells this instance, logs, throws token_reused. */
  function reused (claims: TokenClaims, where: 'refresh' | 'verify'): never {
    revocations.remember([claims.sid])
    fastify.log.warn({ userId: claims.user_id, sessionId: claims.sid, presentedAt: where }, 'refresh token reused: session revoked')
    throw tokenError('token_reused', messages.tokenReused)
  }

  const service: SessionManager = {
    async start (user, client, passwordHash) {
      const sessionId = randomUUID()
      const now = new Date()
      const refresh = tokenService.signRefresh(user, sessionId, new Date(now.getTime() + options.sessionMaxAge * 1000))
      const access = tokenService.signAccess(user, sessionId)
      const started = await startSession(sqlQuery, { userId: user.id, passwordHash, sessionId, now, refresh: refresh.row, access: access.row, ...recorded(client) })
      return started ? { pair: toPair(access, refresh), sessionId } : undefined
    },

    async refresh (refreshToken, client) {
      const legacy = readLegacy?.(refreshToken)
      const rotated = legacy === undefined ? await rotateLive(refreshToken, client) : undefined
      if (rotated !== undefined) return rotated
      const claims = legacy === undefined ? tokenService.verify(refreshToken, 'refresh') : await legacyClaims(legacy)
      const user = await userOf(claims)
      const outcome = await db.transaction(async (tx): Promise<RefreshOutcome> => {
        if (legacy !== undefined) await adoptLegacy(tx, legacy, refreshToken, client)
        const row = await lockRefreshToken(tx, refreshToken, claims)
        const notAfter = new Date(row.session.createdAt.getTime() + options.sessionMaxAge * 1000)
        // Reached only when SESSION_MAX_AGE was lowered: refresh tokens never outlive their session.
        if (notAfter.getTime() <= Date.now()) throw tokenError('token_expired', messages.sessionTooOld)

        /** Replaces the live refresh token `jti` with a new pair. */
        const rotate = async (jti: string) => {
          const refresh = tokenService.signRefresh(user, claims.sid, notAfter)
          const access = tokenService.signAccess(user, claims.sid)
          // The grace window counts from this moment, not from the whole second of the new token's iat.
          await prepared(tx.update(tokens).set({ revokedAt: new Date(), replacedBy: refresh.row.jti }).where(eq(tokens.jti, jti)))
          // The session records the client that used it last: the one a replay within the grace window must be.
          await prepared(tx.update(sessions).set({ lastUsedAt: refresh.row.createdAt, expiresAt: refresh.row.expiresAt, ...recorded(client) }).where(eq(sessions.id, claims.sid)))
          await prepared(tx.insert(tokens).values([access.row, refresh.row]))
          return { pair: toPair(access, refresh), replayed: false }
        }
        if (row.revokedAt === null) return rotate(claims.jti)

        // Rotated already. Within the grace window a client that lost the answer, or a racing
        // request, gets the same replacement again, as long as that one is still live: only the client that
        // rotated it (its user agent, and its address or IPv6 /64), so that a stolen token replayed elsewhere is reuse.
        const { userAgent, ip } = recorded(client)
        const network = (address: string | null) => address === null ? null : clientKey(address)
        const sameClient = row.session.userAgent === userAgent && network(row.session.ip) === network(ip)
        const withinGrace = sameClient && Date.now() - row.revokedAt.getTime() <= options.refreshReuseGrace * 1000
        const [child] = withinGrace
          ? await tx.select().from(tokens).where(and(eq(tokens.jti, row.replacedBy!), isNull(tokens.revokedAt)))
          : []
        if (child !== undefined) {
          const refresh = tokenService.signRefresh(user, claims.sid, notAfter, { jti: child.jti, iat: child.createdAt.getTime() / 1000, exp: child.expiresAt.getTime() / 1000 })
          // Signed by a key rotated away since, the replacement cannot be reproduced: replace it in turn.
          if (refresh.row.tokenHash !== child.tokenHash) return rotate(child.jti)
          const access = tokenService.signAccess(user, claims.sid)
          await tx.insert(tokens).values(access.row)
          return { pair: toPair(access, refresh), replayed: true }
        }
        await revokeWhere(tx, eq(sessions.id, claims.sid))
        return { reused: true }
      })
      if ('pair' in outcome) return { ...outcome, claims }
      reused(claims, 'refresh')
    },

    async logout (refreshToken) {
      const claims = tokenService.verify(refreshToken, 'refresh')
      // Any refresh token of the session logs it out, a rotated one too: a client that lost the
      // answer to its last refresh holds only the old token.
      await db.transaction(async (tx) => {
        await lockRefreshToken(tx, refreshToken, claims)
        await revokeWhere(tx, eq(sessions.id, claims.sid))
      })
      revocations.remember([claims.sid])
      fastify.log.info({ userId: claims.user_id, sessionId: claims.sid }, 'logged out')
    },

    list (userId) {
      return db.select().from(sessions)
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, new Date())))
        .orderBy(desc(sessions.lastUsedAt))
    },

    async revoke (userId, sessionId) {
      const ids = await revokeSessions(and(eq(sessions.userId, userId), eq(sessions.id, sessionId), gt(sessions.expiresAt, new Date())))
      return ids.length > 0
    },

    async revokeAll (userId, except) {
      const ids = await db.transaction(async (tx) => {
        await revokeLegacyTokens(tx, userId)
        return revokeWhere(tx, and(eq(sessions.userId, userId), except === undefined ? undefined : ne(sessions.id, except)))
      })
      revocations.remember(ids)
      return ids.length
    },

    async revokeAllIn (tx, userId) {
      await revokeLegacyTokens(tx, userId)
      return revokeWhere(tx, eq(sessions.userId, userId))
    },

    async tombstoneAll (tx, userIds) {
      const live = await tx.select({ sessionId: tokens.sessionId, expiresAt: max(tokens.expiresAt) }).from(tokens)
        .where(and(inArray(tokens.userId, userIds), eq(tokens.type, 'access'), gt(tokens.expiresAt, new Date())))
        .groupBy(tokens.sessionId)
      const ids = live.map((row) => row.sessionId)
      if (ids.length > 0) {
        await tx.insert(revokedSessions).values(live.map((row) => ({ sessionId: row.sessionId, expiresAt: row.expiresAt as Date })))
          .onConflictDoNothing()
        await revocations.publish(tx, ids)
      }
      return ids
    },

    async inspectRefresh (claims, refreshToken) {
      const user = await userOf(claims)
      const live = await db.transaction(async (tx) => {
        const row = await lockRefreshToken(tx, refreshToken, claims)
        // As at refresh: reached only when SESSION_MAX_AGE was lowered.
        if (row.session.createdAt.getTime() + options.sessionMaxAge * 1000 <= Date.now()) throw tokenError('token_expired', messages.sessionTooOld)
        if (row.revokedAt === null) return true
        if (Date.now() - row.revokedAt.getTime() <= options.refreshReuseGrace * 1000) throw revokedError()
        await revokeWhere(tx, eq(sessions.id, claims.sid))
        return false
      })
      if (live) return user.username
      reused(claims, 'verify')
    }
  }

  fastify.decorate('sessionManager', service)
}, { name: 'sessions', dependencies: ['db', 'tokens', 'revocations', 'users', 'webhooks'] })
