import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { mailedProof, proofError } from '../plugins/mail-tokens.js'
import { fieldErrors, messages, throttledError } from '../src/errors.js'
import { emailKey, validEmail } from '../src/identity.js'
import { Accepted, EmailChangeBody, EmailChangeConfirmBody, EmailVerifyBody, ErrorBody, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'

const emailRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accountMail, audit, mailTokens, usersRepository } = fastify

  fastify.post('/auth/email/verify/', {
    onRequest: fastify.throttle.mailConfirm,
    schema: { tags: ['email'], summary: 'Verify the email address with the mailed token or code', body: EmailVerifyBody, response: { 204: Type.Null(), ...bodyErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const proof = mailedProof(request.body)
    const token = await mailTokens.find('email_verify', proof)
    if (token === undefined || !await accountMail.verifyEmail(token)) throw proofError(proof)
    audit.record({ type: 'email.verified', userId: token.userId, request })
    return reply.code(204).send(null)
  })

  fastify.post('/auth/email/verify/resend/', {
    onRequest: [fastify.throttle.mail, fastify.authenticate],
    schema: { tags: ['email'], summary: 'Mail a new verification link and code (at most 1 a minute and 5 an hour)', security: [{ bearerAuth: [] }], response: { 202: Accepted, 401: ErrorBody, ...bodyErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const user = await usersRepository.findById(request.user.user_id)
    // A token outliving its user is refused by authenticate once the sessions are gone; until then, nothing to send.
    const waitMs = user === undefined ? 0 : await accountMail.resendVerification(user)
    if (waitMs > 0) {
      request.log.warn({ userId: request.user.user_id, client: request.ip }, 'verification resend throttled')
      fastify.authMetrics.throttled.inc({ limit: 'verification_mail' })
      throw throttledError(waitMs)
    }
    return reply.code(202).send({ detail: messages.verificationAccepted })
  })

  fastify.post('/auth/email/change/', {
    onRequest: [fastify.throttle.mail, fastify.authenticate],
    // Each request may mail an address the user chose: per user too, whatever the client's address.
    preHandler: fastify.throttle.mailByUser,
    schema: { tags: ['email'], summary: 'Change the email address: a confirmation goes to the new one, a notice to the old one', security: [{ bearerAuth: [] }], body: EmailChangeBody, response: { 202: Accepted, 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const { user_id: userId } = request.user
    const { password, new_email: newEmail } = request.body
    const user = await fastify.reauthenticate(request, password, 'password', 'email change')
    if (!validEmail(newEmail)) throw fieldErrors({ new_email: [messages.invalidEmail] })
    if (emailKey(newEmail) === emailKey(user.email)) throw fieldErrors({ new_email: [messages.sameEmail] })
    // An address another account has gets the same answer and no mail: this must not tell which addresses exist.
    if (await usersRepository.findByEmail(newEmail) === undefined) {
      await accountMail.requestEmailChange(user, newEmail)
    } else {
      request.log.info({ userId }, 'email change not mailed: the address belongs to another account')
    }
    // Alike whether it was mailed or not: the user's own activity must not tell which addresses have accounts.
    audit.record({ type: 'email.change_requested', userId, sessionId: request.user.sid, request })
    return reply.code(202).send({ detail: messages.emailChangeAccepted })
  })

  fastify.post('/auth/email/change/confirm/', {
    onRequest: fastify.throttle.mailConfirm,
    schema: { tags: ['email'], summary: 'Confirm an email change with the token or code mailed to the new address', body: EmailChangeConfirmBody, response: { 204: Type.Null(), 409: ErrorBody, ...bodyErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const proof = mailedProof(request.body)
    const token = await mailTokens.find('email_change', proof)
    if (token === undefined || !await accountMail.changeEmail(token)) throw proofError(proof)
    audit.record({ type: 'email.changed', userId: token.userId, request })
    return reply.code(204).send(null)
  })
}

export default emailRoutes
