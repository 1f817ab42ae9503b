import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import { Type } from 'typebox'
import { eq } from 'drizzle-orm'
import { apiError, errorBody, fieldErrors, messages, notAuthenticated } from '../src/errors.js'
import { importedUsers } from '../src/db/schema.js'
import { registrationErrors } from '../src/identity.js'
import {
  AdminUserDetail, CohortQuery, Deleted, ErrorBody, EventList, EventQuery, NewUsersAnswer, NewUsersBody, TokenPair, UserChangesBody,
  UserId, UserList, UserQuery, bodyErrors, hashingErrors, throttledErrors, toAdminUser, toAuditEvent
} from '../src/schemas.js'

export interface AdminRouteOptions {
  /** Without it every /admin/ path answers 404. */
  adminToken?: string
}

// What argon2 writes: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, base64 without padding.
const argon2idHash = /^\$argon2id\$v=19\$m=[0-9]{1,7},t=[0-9]{1,3},p=[0-9]{1,3}\$[A-Za-z0-9+/]{11,86}\$[A-Za-z0-9+/]{16,342}$/
// A strong password that no username or email can be similar to, for checking the other fields of an item
// that comes with a hash: the password rules apply to passwords only.
const anyStrongPassword = '\u0000 stands for a hashed password'

/** The operators' API: users, cohorts for load tests, sessions. Every call is logged with its outcome. */
const admin: FastifyPluginAsyncTypebox<AdminRouteOptions> = async (fastify, { adminToken }) => {
  const { accountMail, accounts, audit, db, passwordHasher, sessionManager, usersRepository, webhooks } = fastify
  const digest = (text: string) => createHash('sha256').update(text).digest()
  const expected = adminToken === undefined ? undefined : digest(`Bearer ${adminToken}`)

  // Without ADMIN_TOKEN the API does not exist: the same 404 as any unknown path.
  const exists: onRequestHookHandler = (request, reply, done) => {
    if (expected !== undefined) return done()
    reply.code(404).header('cache-control', 'no-store').send(errorBody(404, 'not_found', messages.routeNotFound(request.method, request.url)))
  }
  // Digests of equal length are compared, so that the time taken tells nothing of the token.
  const authorised: onRequestHookHandler = (request, reply, done) => {
    if (timingSafeEqual(digest(request.headers.authorization ?? ''), expected!)) return done()
    request.log.warn({ client: request.ip, route: request.routeOptions.url }, 'admin call refused: wrong token')
    done(notAuthenticated(messages.adminToken, 'admin'))
  }
  const onRequest = [exists, fastify.throttle.admin, authorised]
  fastify.addHook('onResponse', (request, reply, done) => {
    if (expected !== undefined) {
      const route = `${request.method} ${request.routeOptions.url}`
      request.log.info({ method: request.method, route: request.routeOptions.url, params: request.params, statusCode: reply.statusCode, client: request.ip }, 'admin call')
      // A refused call is an event too: someone is trying tokens.
      const { id } = request.params as { id?: string }
      // A path's id only when it can be a user's: a refused call's path was never validated.
      const userId = id !== undefined && /^[1-9][0-9]{0,9}$/.test(id) && Number(id) <= 2 ** 31 - 1 ? Number(id) : undefined
      // A HEAD is its GET without the body.
      const call = callEvents[route.replace(/^HEAD /, 'GET ')]!
      audit.record({ type: `admin.${reply.statusCode === 401 ? 'refused' : call}`, actor: 'admin', request, userId, detail: { route, status: reply.statusCode } })
    }
    done()
  })
  /** The audit event of each call, by method and route. */
  const callEvents: Record<string, string> = {
    'GET /admin/users/': 'users.listed',
    'GET /admin/users/:id': 'user.viewed',
    'POST /admin/users/': 'users.created',
    'PATCH /admin/users/:id': 'user.updated',
    'DELETE /admin/users/:id': 'user.deleted',
    'DELETE /admin/users/': 'cohort.deleted',
    'DELETE /admin/users/:id/sessions/': 'sessions.revoked',
    'POST /admin/users/:id/sessions/': 'session.minted',
    'GET /admin/events/': 'events.listed'
  }
  const byAdmin = (request: FastifyRequest) => ({ actor: 'admin' as const, request })
  const security = [{ adminToken: [] }]
  // Any route may be sent a body, which is parsed: 400, 413 and 415 too.
  const errors = { 401: ErrorBody, 404: ErrorBody, ...bodyErrors, ...throttledErrors }
  const notFound = () => apiError(404, 'not_found', messages.userNotFound)
  /** A path's id; past the ids a user can have (a PostgreSQL integer), nobody's. */
  function idOf (params: { id: string }): number {
    const id = Number(params.id)
    if (id > 2 ** 31 - 1) throw notFound()
    return id
  }

  async function detail (id: number) {
    const row = await usersRepository.account(id)
    if (row === undefined) throw notFound()
    return { ...toAdminUser(row), sessions: (await sessionManager.list(id)).length }
  }

  fastify.get('/admin/users/', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Users, by id, filtered; keyset pagination', security, querystring: UserQuery, response: { 200: UserList, ...errors } }
  }, async (request) => {
    const { q, tag, disabled, cursor } = request.query
    const limit = Number(request.query.limit ?? 100)
    const rows = await usersRepository.search({ q, tag, disabled: disabled === undefined ? undefined : disabled === 'true', limit: limit + 1, after: cursor === undefined ? undefined : Number(cursor) })
    const page = rows.slice(0, limit)
    return { users: page.map(toAdminUser), next_cursor: rows.length > limit ? String(page.at(-1)!.id) : null }
  })

  fastify.get('/admin/users/:id', {
    onRequest,
    schema: { tags: ['admin'], summary: 'One user, with its live sessions counted', security, params: UserId, response: { 200: AdminUserDetail, ...errors } }
  }, async (request) => detail(idOf(request.params)))

  fastify.post('/admin/users/', {
    onRequest,
    // 1,000 users with their hashes.
    bodyLimit: 1024 * 1024,
    schema: { tags: ['admin'], summary: 'Create up to 1,000 users, each with a password or an argon2id hash; one failing item fails only itself', security, body: NewUsersBody, response: { 201: NewUsersAnswer, ...hashingErrors, ...errors } }
  }, async (request, reply) => {
    const { users, tag } = request.body
    const created = []
    const failed = []
    // One at a time: the unique indexes decide each item, and the hasher's queue is never flooded.
    for (const [index, item] of users.entries()) {
      try {
        if ((item.password === undefined) === (item.password_hash === undefined)) throw fieldErrors({ password: [messages.passwordOrHash] })
        const problems = registrationErrors({ username: item.username, email: item.email, password: item.password ?? anyStrongPassword })
        if (item.password === undefined) delete problems.password
        if (item.password_hash !== undefined && !argon2idHash.test(item.password_hash)) problems.password_hash = [messages.invalidPasswordHash]
        if (Object.keys(problems).length > 0) throw fieldErrors(problems)
        const passwordHash = item.password_hash ?? await passwordHasher.hash(item.password!)
        const user = await db.transaction(async (tx) => {
          const created = await usersRepository.create({ username: item.username, email: item.email, passwordHash, emailVerified: item.email_verified, tag }, tx)
          await webhooks.enqueue(tx, 'user.registered', { user: created }, created.id)
          return created
        })
        audit.record({ type: 'user.registered', userId: user.id, ...byAdmin(request), detail: tag === undefined ? {} : { tag } })
        created.push(toAdminUser((await usersRepository.account(user.id))!))
      } catch (error) {
        const { statusCode, code, errors } = error as { statusCode?: number, code?: string, errors?: Record<string, string[]> }
        if (statusCode === undefined || statusCode >= 500) throw error
        failed.push({ index, code: code!, errors: errors ?? {} })
      }
    }
    return reply.code(201).send({ created, errors: failed })
  })

  fastify.patch('/admin/users/:id', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Change a user\'s username, email, verification, or disable or enable it', security, params: UserId, body: UserChangesBody, response: { 200: AdminUserDetail, 409: ErrorBody, ...errors } }
  }, async (request) => {
    const id = idOf(request.params)
    const { username, email, disabled, email_verified: emailVerified } = request.body
    const current = await usersRepository.account(id)
    if (current === undefined) throw notFound()
    // Only what changes is checked: a user whose stored name older rules allowed can still be disabled.
    const problems = registrationErrors({ username: username ?? 'unchanged', email: email ?? 'unchanged@example.com', password: anyStrongPassword })
    delete problems.password
    if (Object.keys(problems).length > 0) throw fieldErrors(problems)
    await db.transaction(async (tx) => {
      await usersRepository.update(id, { username, email, emailVerified }, tx)
      // As at a change by the user: the old address hears of it, or an account could be taken over unseen.
      if (email !== undefined) await accountMail.notifyEmailChanged(tx, current, email)
    })
    if (email !== undefined) audit.record({ type: 'email.changed', userId: id, ...byAdmin(request) })
    if (disabled !== undefined) await accounts.setDisabled(id, disabled, byAdmin(request))
    return detail(id)
  })

  fastify.delete('/admin/users/:id', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Delete a user as it can delete itself', security, params: UserId, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    const user = await usersRepository.findById(idOf(request.params))
    if (user === undefined || !await accounts.delete(user, byAdmin(request))) throw notFound()
    return reply.code(204).send(null)
  })

  fastify.delete('/admin/users/', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Delete every user of a cohort; the tag is required, so untagged users are never deleted in bulk', security, querystring: CohortQuery, response: { 200: Deleted, ...errors } }
  }, async (request) => ({ deleted: await accounts.deleteCohort(request.query.tag, byAdmin(request)) }))

  fastify.delete('/admin/users/:id/sessions/', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Log a user out everywhere', security, params: UserId, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    const id = idOf(request.params)
    if (await usersRepository.account(id) === undefined) throw notFound()
    const revoked = await sessionManager.revokeAll(id)
    audit.record({ type: 'logout.all', userId: id, ...byAdmin(request), detail: { revoked_sessions: revoked } })
    return reply.code(204).send(null)
  })

  fastify.post('/admin/users/:id/sessions/', {
    onRequest,
    schema: { tags: ['admin'], summary: 'Mint a session for a user of a tagged cohort, without its password: a load test\'s logins', security, params: UserId, response: { 201: TokenPair, 403: ErrorBody, ...errors } }
  }, async (request, reply) => {
    const id = idOf(request.params)
    const [account, user, [imported]] = await Promise.all([
      usersRepository.account(id),
      usersRepository.findById(id),
      db.select({ id: importedUsers.id }).from(importedUsers).where(eq(importedUsers.id, id))
    ])
    if (account === undefined || user === undefined) throw notFound()
    // Never a real user's: a leaked ADMIN_TOKEN must not open every account. Users imported with --tag are real too.
    if (account.tag === null || imported !== undefined) throw apiError(403, 'forbidden', messages.cohortOnly)
    if (user.disabled) throw apiError(403, 'account_disabled', messages.accountDisabled)
    const started = await sessionManager.start(user, { userAgent: request.headers['user-agent'], ip: request.ip }, user.passwordHash)
    /* c8 ignore next: the user deleted, disabled or given a new password in the moment since it was read */
    if (started === undefined) throw notFound()
    audit.record({ type: 'login.succeeded', userId: id, sessionId: started.sessionId, ...byAdmin(request), detail: { minted: true } })
    return reply.code(201).send(started.pair)
  })

  fastify.get('/admin/events/', {
    onRequest,
    schema: { tags: ['admin'], summary: 'The audit trail, newest first; events reach it within a second', security, querystring: EventQuery, response: { 200: EventList, ...errors } }
  }, async (request) => {
    const { user_id: userId, type, since, cursor } = request.query
    const limit = Number(request.query.limit ?? 100)
    // A leap second (23:59:60) matches the date-time format, and is no time JavaScript can hold.
    const after = since === undefined ? undefined : new Date(since)
    if (after !== undefined && Number.isNaN(after.getTime())) throw fieldErrors({ since: [messages.invalidDateTime] })
    if (userId !== undefined && Number(userId) > 2 ** 31 - 1) return { events: [], next_cursor: null }
    // What this instance has queued is written first; other instances' events follow within a second.
    await audit.flush()
    const rows = await audit.list({
      userId: userId === undefined ? undefined : Number(userId),
      type,
      since: after,
      before: cursor === undefined ? undefined : Number(cursor),
      limit: limit + 1
    })
    const page = rows.slice(0, limit)
    return { events: page.map(toAuditEvent), next_cursor: rows.length > limit ? String(page.at(-1)!.id) : null }
  })
}

export default admin
