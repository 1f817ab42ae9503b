import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { clientKey } from '../src/client-address.js'
import { fieldErrors, messages } from '../src/errors.js'
import { accountOf } from './throttle.js'
import type { Credentials } from './users.js'

/**
 * The password of the authenticated user, asked again before a change that matters (a new password, a new
 * address, a deletion): a guess like a login's, against the same budget, so that a stolen access token cannot
 * be turned into unlimited guesses. An authenticated session is at least a known device: failures from
 * elsewhere must not keep its owner out (only this client's own failures do).
 */
export type Reauthenticate = (request: FastifyRequest, password: string, field: string, what: string) => Promise<Credentials>

declare module 'fastify' {
  interface FastifyInstance {
    /** Answers the user's credentials when `password` is theirs; else a 400 on `field`, or a 429 past the budget. */
    reauthenticate: Reauthenticate
  }
}

export default fp(async (fastify) => {
  const { passwordHasher, usersRepository } = fastify
  const { failedLogins } = fastify.throttle

  const reauthenticate: Reauthenticate = async (request, password, field, what) => {
    const { user_id: userId, sid } = request.user
    const attempt = await failedLogins.reserve(accountOf(userId), clientKey(request.ip), true).catch((error: unknown) => {
      fastify.authMetrics.throttled.inc({ limit: 'login_failures' })
      request.log.warn({ userId, client: request.ip }, `${what} throttled: too many failures`)
      throw error
    })
    try {
      const user = await usersRepository.findById(userId)
      if (user === undefined || !await passwordHasher.verify(user.passwordHash, password)) {
        await attempt.failed()
        request.log.warn({ userId, sessionId: sid, client: request.ip }, `${what} failed: wrong ${field === 'current_password' ? 'current password' : 'password'}`)
        throw fieldErrors({ [field]: [field === 'current_password' ? messages.wrongCurrentPassword : messages.wrongPassword] })
      }
      await attempt.succeeded()
      return user
    } finally {
      // Gives back an attempt that ended in neither outcome, such as a busy hasher.
      await attempt.release()
    }
  }
  fastify.decorate('reauthenticate', reauthenticate)
}, { name: 'reauthenticate', dependencies: ['password', 'users', 'throttle', 'metrics'] })
