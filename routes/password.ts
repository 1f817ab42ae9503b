import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eq } from 'drizzle-orm'
import { Type } from 'typebox'
import { users } from '../src/db/schema.js'
import { fieldErrors } from '../src/errors.js'
import { registrationErrors } from '../src/identity.js'
import { ErrorBody, PasswordChangeBody, bodyErrors, hashingErrors } from '../src/schemas.js'

const passwordRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, password, sessions } = fastify

  fastify.post('/auth/password/change/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'Change the password; every other session is revoked', security: [{ bearerAuth: [] }], body: PasswordChangeBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors } }
  }, async (request, reply) => {
    const { user_id: userId, sid } = request.user
    const { current_password: currentPassword, new_password: newPassword } = request.body
    const [user] = await db.select().from(users).where(eq(users.id, userId))
    if (user === undefined || !await password.verify(user.passwordHash, currentPassword)) {
      throw fieldErrors({ current_password: ['Your current password was entered incorrectly.'] })
    }
    const errors = registrationErrors({ username: user.username, email: user.email, password: newPassword }).password
    if (errors !== undefined) throw fieldErrors({ new_password: errors })

    await db.update(users).set({ passwordHash: await password.hash(newPassword) }).where(eq(users.id, userId))
    const revoked = await sessions.revokeAll(userId, sid)
    request.log.info({ userId, sessionId: sid, revokedSessions: revoked }, 'password changed')
    return reply.code(204).send(null)
  })
}

export default passwordRoutes
