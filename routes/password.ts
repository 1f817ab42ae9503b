import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { fieldErrors, messages } from '../src/errors.js'
import { registrationErrors } from '../src/identity.js'
import { ErrorBody, PasswordChangeBody, bodyErrors, hashingErrors } from '../src/schemas.js'

const passwordRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordHasher, sessionManager, usersRepository } = fastify

  fastify.post('/auth/password/change/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'Change the password; every other session is revoked', security: [{ bearerAuth: [] }], body: PasswordChangeBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors } }
  }, async (request, reply) => {
    const { user_id: userId, sid } = request.user
    const { current_password: currentPassword, new_password: newPassword } = request.body
    const user = await usersRepository.findById(userId)
    if (user === undefined || !await passwordHasher.verify(user.passwordHash, currentPassword)) {
      throw fieldErrors({ current_password: [messages.wrongCurrentPassword] })
    }
    const errors = registrationErrors({ username: user.username, email: user.email, password: newPassword }).password
    if (errors !== undefined) throw fieldErrors({ new_password: errors })

    await usersRepository.setPasswordHash(userId, await passwordHasher.hash(newPassword))
    const revoked = await sessionManager.revokeAll(userId, sid)
    request.log.info({ userId, sessionId: sid, revokedSessions: revoked }, 'password changed')
    return reply.code(204).send(null)
  })
}

export default passwordRoutes
