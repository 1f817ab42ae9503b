import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { accountOf, unknownAccount } from '../plugins/throttle.js'
import { accountKey } from '../plugins/users.js'
import { clientKey } from '../src/client-address.js'
import { apiError, fieldErrors, messages } from '../src/errors.js'
import { registrationErrors } from '../src/identity.js'
import { ErrorBody, LoginAnswer, LoginBody, RegisterBody, User, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'

// SimpleJWT's wording, the same whether the user is unknown or the password is wrong.
const invalidCredentials = () => apiError(401, 'invalid_credentials', messages.invalidCredentials)

export interface AuthRouteOptions {
  /** A login with the right password on an unverified address answers 403 email_unverified. */
  requireVerifiedEmail: boolean
}

const auth: FastifyPluginAsyncTypebox<AuthRouteOptions> = async (fastify, { requireVerifiedEmail }) => {
  const { accountMail, audit, db, deviceTokens, passwordHasher, sessionManager, usersRepository, webhooks } = fastify
  const { failedLogins } = fastify.throttle
  const { logins, registrations } = fastify.authMetrics

  // The second path is the one the Django service served.
  for (const path of ['/auth/register/', '/auth/registration/']) {
    fastify.post(path, {
      onRequest: fastify.throttle.register,
      schema: { tags: ['auth'], summary: 'Register a user', body: RegisterBody, response: { 201: User, 409: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
    }, async (request, reply) => {
      const { username, email, password } = request.body
      const errors = registrationErrors(request.body)
      if (Object.keys(errors).length > 0) throw fieldErrors(errors)

      const passwordHash = await passwordHasher.hash(password)
      // The user and its verification mail, committed together.
      const user = await db.transaction(async (tx) => {
        const created = await usersRepository.create({ username, email, passwordHash }, tx)
        await accountMail.sendToken(tx, created, 'email_verify', created.email)
        await webhooks.enqueue(tx, 'user.registered', { user: created }, created.id)
        return created
      })
      registrations.inc()
      audit.record({ type: 'user.registered', userId: user.id, request })
      request.log.info({ userId: user.id }, 'user registered')
      return reply.code(201).send(user)
    })
  }

  // SimpleJWT's TokenObtainPairView answers at /api/token/ by default: the same login, under the same limit.
  for (const path of ['/auth/login/', '/api/token/']) {
    fastify.post(path, {
      onRequest: fastify.throttle.login,
      schema: { tags: ['auth'], summary: 'Log in: a new session and its token pair', body: LoginBody, response: { 200: LoginAnswer, 401: ErrorBody, 403: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
    }, async (request) => {
      const { username: identifier, password, device_token: deviceToken } = request.body
      const user = await usersRepository.findForLogin(identifier)
      const device = user === undefined ? undefined : deviceTokens.trusted(deviceToken, user.id, user.passwordHash)
      // A known account is counted as one, whether its username or its email was typed. Unknown accounts are
      // counted too, under what was typed, so that a throttled answer does not tell which accounts exist.
      const account = user === undefined ? unknownAccount(accountKey(identifier)) : accountOf(user.id)
      // A known device is counted as itself, wherever it is, and skips the account-wide waits.
      const client = device === undefined ? clientKey(request.ip) : `device:${device}`
      const attempt = await failedLogins.reserve(account, client, device !== undefined).catch((error: unknown) => {
        logins.inc({ outcome: 'throttled' })
        fastify.authMetrics.throttled.inc({ limit: 'login_failures' })
        // Never the typed identifier: a password typed into the username field would land in the log.
        request.log.warn({ userId: user?.id, client: request.ip }, 'login throttled: too many failures')
        audit.record({ type: 'login.failed', userId: user?.id, request, detail: { reason: 'throttled' } })
        throw error
      })
      try {
        if (user === undefined) {
          // Spend the time a real verify takes, so timing does not tell which accounts exist.
          await passwordHasher.verifyDummy(password)
          await attempt.failed()
          logins.inc({ outcome: 'bad_credentials' })
          // Never what was typed: a password typed into the username field would be stored.
          audit.record({ type: 'login.failed', request, detail: { reason: 'unknown_account' } })
          request.log.info('login failed: unknown account')
          throw invalidCredentials()
        }
        if (!await passwordHasher.verify(user.passwordHash, password)) {
          await attempt.failed()
          logins.inc({ outcome: 'bad_credentials' })
          audit.record({ type: 'login.failed', userId: user.id, request, detail: { reason: 'wrong_password' } })
          request.log.info({ userId: user.id }, 'login failed: wrong password')
          throw invalidCredentials()
        }
        await attempt.succeeded()
        // Only after the password checked out: these tell nothing to someone without it.
        if (user.disabled) {
          logins.inc({ outcome: 'disabled' })
          audit.record({ type: 'login.failed', userId: user.id, request, detail: { reason: 'account_disabled' } })
          request.log.info({ userId: user.id }, 'login refused: account disabled')
          throw apiError(403, 'account_disabled', messages.accountDisabled)
        }
        if (requireVerifiedEmail && !user.emailVerified) {
          logins.inc({ outcome: 'email_unverified' })
          audit.record({ type: 'login.failed', userId: user.id, request, detail: { reason: 'email_unverified' } })
          request.log.info({ userId: user.id }, 'login refused: email not verified')
          throw apiError(403, 'email_unverified', messages.emailUnverified)
        }
        let verifiedHash = user.passwordHash
        if (passwordHasher.needsRehash(verifiedHash)) {
          // Only over the hash just verified: a password changed meanwhile is never undone.
          const stronger = await passwordHasher.hash(password)
          if (await usersRepository.setPasswordHash(user.id, stronger, verifiedHash)) {
            verifiedHash = stronger
          } else {
            // Changed meanwhile: by a racing login's own re-hash, or by a new password. Only the first opens a session.
            const current = await usersRepository.findById(user.id)
            if (current !== undefined && await passwordHasher.verify(current.passwordHash, password)) verifiedHash = current.passwordHash
          }
        }
        const started = await sessionManager.start(user, { userAgent: request.headers['user-agent'], ip: request.ip }, verifiedHash)
        if (started === undefined) {
          logins.inc({ outcome: 'bad_credentials' })
          audit.record({ type: 'login.failed', userId: user.id, request, detail: { reason: 'password_changed' } })
          request.log.info({ userId: user.id }, 'login failed: the password changed during the login')
          throw invalidCredentials()
        }
        const { pair, sessionId } = started
        logins.inc({ outcome: 'success' })
        audit.record({ type: 'login.succeeded', userId: user.id, sessionId, request, detail: { known_device: device !== undefined } })
        request.log.info({ userId: user.id, sessionId, knownDevice: device !== undefined }, 'login succeeded')
        return { ...pair, device_token: deviceTokens.issue(user.id, verifiedHash) }
      } finally {
        // Gives back an attempt that ended in neither outcome, such as a busy hasher or a database error.
        await attempt.release()
      }
    })
  }
}

export default auth
