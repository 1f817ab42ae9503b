import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { fieldErrors, messages } from '../src/errors.js'
import { registrationErrors } from '../src/identity.js'
import { Accepted, ErrorBody, PasswordChangeBody, PasswordResetBody, PasswordResetConfirmBody, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'
import { mailedProof, proofError } from '../plugins/mail-tokens.js'

const passwordRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accountMail, audit, db, mailTokens, passwordHasher, sessionManager, usersRepository } = fastify

  fastify.post('/auth/password/change/', {
    onRequest: [fastify.throttle.passwordChange, fastify.authenticate],
    preHandler: fastify.throttle.passwordChangeByUser,
    schema: { tags: ['auth'], summary: 'Change the password; every other session is revoked', security: [{ bearerAuth: [] }], body: PasswordChangeBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const { user_id: userId, sid } = request.user
    const { current_password: currentPassword, new_password: newPassword } = request.body
    const user = await fastify.reauthenticate(request, currentPassword, 'current_password', 'password change')
    const errors = registrationErrors({ username: user.username, email: user.email, password: newPassword }).password
    if (errors !== undefined) throw fieldErrors({ new_password: errors })

    // Only over the password just verified: of two changes racing, the second finds it changed and fails.
    const newHash = await passwordHasher.hash(newPassword)
    const changed = await db.transaction(async (tx) => {
      if (!await usersRepository.setPasswordHash(userId, newHash, user.passwordHash, tx)) return false
      await accountMail.notifyPasswordChanged(tx, user)
      return true
    })
    if (!changed) throw fieldErrors({ current_password: [messages.wrongCurrentPassword] })
    const revoked = await sessionManager.revokeAll(userId, sid)
    audit.record({ type: 'password.changed', userId, sessionId: sid, request, detail: { revoked_sessions: revoked } })
    request.log.info({ userId, sessionId: sid, revokedSessions: revoked }, 'password changed')
    return reply.code(204).send(null)
  })

  fastify.post('/auth/password/reset/', {
    onRequest: fastify.throttle.mail,
    schema: { tags: ['auth'], summary: 'Mail a password reset link and code: the same answer whether or not the address has an account', body: PasswordResetBody, response: { 202: Accepted, ...bodyErrors, ...throttledErrors } }
  }, async (request, reply) => {
    // The lookup and the mail happen after the answer, which is thus the same, in content and in time, for
    // every address.
    accountMail.requestReset(request.body.email, request)
    return reply.code(202).send({ detail: messages.resetAccepted })
  })

  fastify.post('/auth/password/reset/confirm/', {
    onRequest: fastify.throttle.mailConfirm,
    schema: { tags: ['auth'], summary: 'Set a new password with a mailed token or code; every session is revoked', body: PasswordResetConfirmBody, response: { 204: Type.Null(), ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const { new_password: newPassword } = request.body
    const proof = mailedProof(request.body)
    const token = await mailTokens.find('password_reset', proof)
    const user = token === undefined ? undefined : await usersRepository.findById(token.userId)
    if (token === undefined || user === undefined) throw proofError(proof)
    const errors = registrationErrors({ username: user.username, email: user.email, password: newPassword }).password
    if (errors !== undefined) throw fieldErrors({ new_password: errors })
    if (!await accountMail.resetPassword(token, user, await passwordHasher.hash(newPassword))) throw proofError(proof)
    audit.record({ type: 'password.reset', userId: user.id, request })
    return reply.code(204).send(null)
  })
}

export default passwordRoutes
