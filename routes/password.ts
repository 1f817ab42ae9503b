import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { accountOf } from '../plugins/throttle.js'
import { clientKey } from '../src/client-address.js'
import { fieldErrors, messages } from '../src/errors.js'
import { registrationErrors } from '../src/identity.js'
import { ErrorBody, PasswordChangeBody, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'

const passwordRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordHasher, sessionManager, usersRepository } = fastify
  const { failedLogins } = fastify.throttle

  fastify.post('/auth/password/change/', {
    onRequest: [fastify.throttle.passwordChange, fastify.authenticate],
    preHandler: fastify.throttle.passwordChangeByUser,
    schema: { tags: ['auth'], summary: 'Change the password; every other session is revoked', security: [{ bearerAuth: [] }], body: PasswordChangeBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const { user_id: userId, sid } = request.user
    const { current_password: currentPassword, new_password: newPassword } = request.body
    // The current password is a guess like a login's, against the same budget: one account, one count.
    // An authenticated session is at least a known device: failures from elsewhere must not keep its owner from
    // changing the password (only this client's own failures, and the per-user limit, do).
    const attempt = await failedLogins.reserve(accountOf(userId), clientKey(request.ip), true).catch((error: unknown) => {
      fastify.authMetrics.throttled.inc({ limit: 'login_failures' })
      request.log.warn({ userId, client: request.ip }, 'password change throttled: too many failures')
      throw error
    })
    let user
    try {
      user = await usersRepository.findById(userId)
      if (user === undefined || !await passwordHasher.verify(user.passwordHash, currentPassword)) {
        await attempt.failed()
        request.log.warn({ userId, sessionId: sid, client: request.ip }, 'password change failed: wrong current password')
        throw fieldErrors({ current_password: [messages.wrongCurrentPassword] })
      }
      await attempt.succeeded()
    } finally {
      // Gives back an attempt that ended in neither outcome, such as a busy hasher.
      await attempt.release()
    }
    const errors = registrationErrors({ username: user.username, email: user.email, password: newPassword }).password
    if (errors !== undefined) throw fieldErrors({ new_password: errors })

    // Only over the password just verified: of two changes racing, the second finds it changed and fails.
    if (!await usersRepository.setPasswordHash(userId, await passwordHasher.hash(newPassword), user.passwordHash)) {
      throw fieldErrors({ current_password: [messages.wrongCurrentPassword] })
    }
    const revoked = await sessionManager.revokeAll(userId, sid)
    request.log.info({ userId, sessionId: sid, revokedSessions: revoked }, 'password changed')
    return reply.code(204).send(null)
  })
}

export default passwordRoutes
