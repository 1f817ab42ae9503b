import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eq } from 'drizzle-orm'
import type { TokenClaims } from '../plugins/tokens.js'
import { prepared } from '../src/db/connect.js'
import { uniqueViolation } from '../src/db/errors.js'
import { users } from '../src/db/schema.js'
import { apiError, fieldErrors } from '../src/errors.js'
import { emailKey, normaliseEmail, registrationErrors, usernameKey } from '../src/identity.js'
import { ErrorBody, LoginBody, RegisterBody, TokenPair, User, bodyErrors, hashingErrors, throttledErrors, toUser } from '../src/schemas.js'

// SimpleJWT's wording, the same whether the user is unknown or the password is wrong.
const invalidCredentials = () => apiError(401, 'invalid_credentials', 'No active account found with the given credentials')

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, password, sessions } = fastify
  const { failedLogins } = fastify.throttle
  const { logins, registrations } = fastify.authMetrics

  // The second path is the one the Django service served.
  for (const path of ['/auth/register/', '/auth/registration/']) {
    fastify.post(path, {
      onRequest: fastify.throttle.register,
      schema: { tags: ['auth'], summary: 'Register a user', body: RegisterBody, response: { 201: User, 409: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
    }, async (request, reply) => {
      const body = request.body
      const errors = registrationErrors(body)
      if (Object.keys(errors).length > 0) throw fieldErrors(errors)

      const passwordHash = await password.hash(body.password)
      try {
        const [user] = await prepared(db.insert(users).values({
          username: body.username.normalize('NFKC'),
          usernameKey: usernameKey(body.username),
          email: normaliseEmail(body.email),
          emailKey: emailKey(body.email),
          passwordHash
        }).returning())
        registrations.inc()
        request.log.info({ userId: user!.id }, 'user registered')
        return reply.code(201).send(toUser(user!))
      } catch (error) {
        // The unique indexes decide, so racing registrations of one name get exactly one 201.
        const constraint = uniqueViolation(error)
        if (constraint === 'users_username_key_unique') throw apiError(409, 'username_taken', 'A user with that username already exists.')
        if (constraint === 'users_email_key_unique') throw apiError(409, 'email_taken', 'A user with that email address already exists.')
        throw error
      }
    })
  }

  fastify.post('/auth/login/', {
    onRequest: fastify.throttle.login,
    schema: { tags: ['auth'], summary: 'Log in: a new session and its token pair', body: LoginBody, response: { 200: TokenPair, 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request) => {
    const { username: identifier, password: plaintext } = request.body
    const byEmail = identifier.includes('@')
    // Unknown accounts are counted too, so a throttled answer does not tell which accounts exist.
    const account = byEmail ? emailKey(identifier) : usernameKey(identifier)
    const attempt = await failedLogins.reserve(account, request.ip).catch((error: unknown) => {
      logins.inc({ outcome: 'throttled' })
      fastify.authMetrics.throttled.inc({ limit: 'login_failures' })
      request.log.warn({ account, client: request.ip }, 'login throttled: too many failures')
      throw error
    })
    try {
      // PostgreSQL text cannot hold NUL, and no registered name or email contains one.
      const [user] = identifier.includes('\0') ? [] : await prepared(db
        .select({ id: users.id, username: users.username, passwordHash: users.passwordHash })
        .from(users)
        .where(byEmail ? eq(users.emailKey, account) : eq(users.usernameKey, account)))
      if (user === undefined) {
        // Spend the time a real verify takes, so timing does not tell which accounts exist.
        await password.verifyDummy(plaintext)
        await attempt.failed()
        logins.inc({ outcome: 'bad_credentials' })
        request.log.info('login failed: unknown account')
        throw invalidCredentials()
      }
      if (!await password.verify(user.passwordHash, plaintext)) {
        await attempt.failed()
        logins.inc({ outcome: 'bad_credentials' })
        request.log.info({ userId: user.id }, 'login failed: wrong password')
        throw invalidCredentials()
      }
      await attempt.succeeded()
      if (password.needsRehash(user.passwordHash)) {
        await db.update(users).set({ passwordHash: await password.hash(plaintext) }).where(eq(users.id, user.id))
      }
      const pair = await sessions.start(user, { userAgent: request.headers['user-agent'], ip: request.ip })
      logins.inc({ outcome: 'success' })
      request.log.info({ userId: user.id, sessionId: fastify.jwt.decode<TokenClaims>(pair.access)!.sid }, 'login succeeded')
      return pair
    } finally {
      // Gives back an attempt that ended in neither outcome, such as a busy hasher or a database error.
      await attempt.release()
    }
  })
}

export default auth
