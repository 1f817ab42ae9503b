import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { accountOf } from '../plugins/throttle.js'
import { clientKey } from '../src/client-address.js'
import { fieldErrors, messages, tokenError } from '../src/errors.js'
import { DeleteAccountBody, ErrorBody, User, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, passwordHasher, usersRepository } = fastify
  const { failedLogins } = fastify.throttle

  fastify.get('/auth/me/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'The current user', security: [{ bearerAuth: [] }], response: { 200: User, 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const user = await usersRepository.profile(request.user.user_id)
    if (user === undefined) throw tokenError('token_invalid', messages.userNotFound)
    return user
  })

  fastify.delete('/auth/me/', {
    onRequest: [fastify.throttle.login, fastify.authenticate],
    schema: { tags: ['auth'], summary: 'Delete the current user and everything of it; every session ends on every instance', security: [{ bearerAuth: [] }], body: DeleteAccountBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const { user_id: userId } = request.user
    // The password is a guess like a login's, against the same budget.
    const attempt = await failedLogins.reserve(accountOf(userId), clientKey(request.ip), true).catch((error: unknown) => {
      fastify.authMetrics.throttled.inc({ limit: 'login_failures' })
      request.log.warn({ userId, client: request.ip }, 'account deletion throttled: too many failures')
      throw error
    })
    let user
    try {
      user = await usersRepository.findById(userId)
      if (user === undefined || !await passwordHasher.verify(user.passwordHash, request.body.password)) {
        await attempt.failed()
        request.log.warn({ userId, client: request.ip }, 'account deletion failed: wrong password')
        throw fieldErrors({ password: [messages.wrongPassword] })
      }
      await attempt.succeeded()
    } finally {
      await attempt.release()
    }
    // Deleted meanwhile by a racing request: the same outcome.
    await accounts.delete(user)
    return reply.code(204).send(null)
  })
}

export default me
