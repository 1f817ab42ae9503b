import fp from 'fastify-plugin'
import type { MailConfig } from '../src/config.js'
import type { FastifyRequest } from 'fastify'
import type { Database } from '../src/db/connect.js'
import { normaliseEmail } from '../src/identity.js'
import type { MailKind } from '../src/mail/templates.js'
import { codeLifetime, type MailTokenKind, type MailTokenRow } from './mail-tokens.js'

export interface AccountMailOptions {
  mail: MailConfig
}

/** Whom a mail is for. */
export interface Recipient {
  id: number
  username: string
  email: string
}

/**
 * The flows that prove a user owns an address: password reset, email verification, email change. Each
 * state change and the mail it needs are committed together; a mailed token is used within the same
 * transaction as what it allows.
 */
export interface AccountMail {
  /** In tx: a new token of its kind for the user, mailed to `to` (the user's address, or the new one of an email change). */
  sendToken: (tx: Database, user: Recipient, kind: MailTokenKind, to: string) => Promise<void>
  /** In tx: the password-changed notice, and its webhook. */
  notifyPasswordChanged: (tx: Database, user: Recipient) => Promise<void>
  /**
   * Off the request's path, so that the answer and its timing are the same whatever the address: a reset
   * mail to the user of `email`, unless that user had `resetsPerHour` within the hour.
   */
  requestReset: (email: string, request: FastifyRequest) => void
  /**
   * A new verification mail to the user's address, at most one a minute and `verificationsPerHour` an hour
   * (the registration's mail counts): answers 0 when it is queued or the address is verified already,
   * else the milliseconds to wait.
   */
  resendVerification: (user: Recipient & { emailVerified: boolean }) => Promise<number>
  /** A confirmation mail to the new address and a notice to the old one. */
  requestEmailChange: (user: Recipient, newEmail: string) => Promise<void>
  /** In tx: the notice to the old address of a change made by an operator, and the webhook. */
  notifyEmailChanged: (tx: Database, user: Recipient, newEmail: string) => Promise<void>
  /** Resolves once every requestReset started so far has finished. */
  settled: () => Promise<void>
  /**
   * Uses a reset token: the password hash becomes `passwordHash`, every other reset of the user is dead, every
   * session is revoked on every instance, the address is verified (the mail was read there) and a
   * password-changed notice queued. False when the token was used meanwhile.
   */
  resetPassword: (token: MailTokenRow, user: Recipient, passwordHash: string) => Promise<boolean>
  /** Uses a verification token: the user's address is verified, if it is still the one mailed. */
  verifyEmail: (token: MailTokenRow) => Promise<boolean>
  /**
   * Uses an email change token: the address becomes the one mailed, verified, and the resets and verifications
   * sent to the old one are dead. Throws 409 email_taken if another user took it meanwhile.
   */
  changeEmail: (token: MailTokenRow) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    accountMail: AccountMail
  }
}

/** Reset mails one address gets per hour at most; more requests are answered alike and send nothing. */
export const resetsPerHour = 3
/** An email change must be confirmed within this many seconds. */
export const emailChangeTtl = 3600
/** Verification mails a user may ask for per hour, the registration's included; and one a minute at most. */
export const verificationsPerHour = 5

/** `3600` → `1 hour`, `900` → `15 minutes`. */
export function humanDuration (seconds: number): string {
  const [amount, unit] = seconds % 86400 === 0
    ? [seconds / 86400, 'day']
    : seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}

/** `ada.lovelace@example.com` → `a***@example.com`: enough for its owner to recognise, too little to harvest. */
export const maskEmail = (email: string) => `${email.slice(0, 1)}***${email.slice(email.lastIndexOf('@'))}`

export default fp<AccountMailOptions>(async (fastify, { mail }) => {
  const { audit, db, mailer, mailTokens, revocations, sessionManager, usersRepository, webhooks } = fastify
  const links: Record<MailTokenKind, string | undefined> = {
    password_reset: mail.links.passwordReset,
    email_verify: mail.links.emailVerify,
    email_change: mail.links.emailChange
  }
  const lifetimes: Record<MailTokenKind, number> = {
    password_reset: mail.resetTokenTtl,
    email_verify: mail.verifyTokenTtl,
    email_change: emailChangeTtl
  }
  const pending = new Set<Promise<void>>()
  const noticeOfChange = (tx: Database, user: Recipient, newEmail: string) =>
    mailer.enqueue(tx, { kind: 'email_change_notice', to: user.email, variables: { username: user.username, new_email: maskEmail(newEmail) } })

  /** What a reset request does once it has been answered. */
  async function sendReset (email: string, request: FastifyRequest): Promise<void> {
    const user = await usersRepository.findByEmail(email)
    if (user === undefined) {
      fastify.log.info('password reset not mailed: no user has that address')
      return
    }
    if (user.disabled) {
      audit.record({ type: 'password.reset_requested', userId: user.id, request, detail: { mailed: false, reason: 'account_disabled' } })
      fastify.log.warn({ userId: user.id }, 'password reset not mailed: the account is disabled')
      return
    }
    const sent = await db.transaction(async (tx) => {
      if ((await mailTokens.issuedWithin(tx, user.id, 'password_reset', 3600_000)).length >= resetsPerHour) return false
      await service.sendToken(tx, user, 'password_reset', user.email)
      return true
    })
    audit.record({ type: 'password.reset_requested', userId: user.id, request, detail: sent ? { mailed: true } : { mailed: false, reason: 'hourly_limit' } })
    if (sent) fastify.log.info({ userId: user.id }, 'password reset mailed')
    else fastify.log.warn({ userId: user.id }, `password reset not mailed: ${resetsPerHour} already within the hour`)
  }

  const service: AccountMail = {
    async sendToken (tx, user, kind, to) {
      const issued = await mailTokens.issue(tx, user.id, kind, to, lifetimes[kind])
      const link = links[kind]?.replaceAll('{token}', issued.token)
      await mailer.enqueue(tx, {
        kind: kind satisfies MailKind,
        to,
        variables: {
          username: user.username,
          token: issued.token,
          code: issued.code,
          ...(link === undefined ? {} : { link }),
          expires_in: humanDuration(lifetimes[kind]),
          code_expires_in: humanDuration(Math.min(lifetimes[kind], codeLifetime))
        },
        expiresAt: issued.expiresAt
      })
    },

    async notifyPasswordChanged (tx, user) {
      await mailer.enqueue(tx, { kind: 'password_changed', to: user.email, variables: { username: user.username } })
      await webhooks.enqueue(tx, 'password.changed', { user_id: user.id }, user.id)
    },

    requestReset (email, request) {
      // After the answer is on its way: on PGlite the lookup runs on this thread, and must not delay the answer
      // more for an address that has an account than for one that has none.
      const work: Promise<void> = new Promise((resolve) => setImmediate(resolve)).then(() => sendReset(email, request))
        .catch((error: unknown) => { fastify.log.error({ err: error }, 'password reset request failed') })
        .finally(() => { pending.delete(work) })
      pending.add(work)
    },

    async resendVerification (user) {
      if (user.emailVerified) return 0
      const waitMs = await db.transaction(async (tx) => {
        const [newest, , , , fifth] = await mailTokens.issuedWithin(tx, user.id, 'email_verify', 3600_000)
        const now = Date.now()
        if (newest !== undefined && now - newest.getTime() < 60_000) return newest.getTime() + 60_000 - now
        if (fifth !== undefined) return fifth.getTime() + 3600_000 - now
        await service.sendToken(tx, user, 'email_verify', user.email)
        return 0
      })
      if (waitMs === 0) fastify.log.info({ userId: user.id }, 'verification mailed again')
      return waitMs
    },

    async requestEmailChange (user, newEmail) {
      await db.transaction(async (tx) => {
        await service.sendToken(tx, user, 'email_change', newEmail)
        await noticeOfChange(tx, user, newEmail)
      })
      fastify.log.info({ userId: user.id }, 'email change requested')
    },

    async notifyEmailChanged (tx, user, newEmail) {
      await noticeOfChange(tx, user, newEmail)
      await webhooks.enqueue(tx, 'email.changed', { user_id: user.id, email: normaliseEmail(newEmail) }, user.id)
    },

    async settled () {
      await Promise.all(pending)
    },

    async resetPassword (token, user, passwordHash) {
      const revoked = await db.transaction(async (tx) => {
        if (!await mailTokens.consume(tx, token)) return undefined
        await usersRepository.setPasswordHash(token.userId, passwordHash, undefined, tx)
        await usersRepository.markEmailVerified(tx, token.userId, token.emailKey)
        await mailTokens.killAll(tx, token.userId, ['password_reset'])
        await service.notifyPasswordChanged(tx, user)
        return sessionManager.revokeAllIn(tx, token.userId)
      })
      if (revoked === undefined) return false
      revocations.remember(revoked)
      fastify.log.info({ userId: token.userId, revokedSessions: revoked.length }, 'password reset')
      return true
    },

    async verifyEmail (token) {
      const verified = await db.transaction(async (tx) =>
        await mailTokens.consume(tx, token) && await usersRepository.markEmailVerified(tx, token.userId, token.emailKey))
      if (verified) fastify.log.info({ userId: token.userId }, 'email verified')
      return verified
    },

    async changeEmail (token) {
      const changed = await db.transaction(async (tx) => {
        if (!await mailTokens.consume(tx, token)) return false
        await usersRepository.changeEmail(tx, token.userId, token.email)
        await webhooks.enqueue(tx, 'email.changed', { user_id: token.userId, email: token.email }, token.userId)
        // What was mailed to the old address proves nothing any more.
        await mailTokens.killAll(tx, token.userId, ['password_reset', 'email_verify', 'email_change'])
        return true
      })
      if (changed) fastify.log.info({ userId: token.userId }, 'email changed')
      return changed
    }
  }

  fastify.decorate('accountMail', service)
  fastify.addHook('preClose', () => service.settled())
}, { name: 'account-mail', dependencies: ['audit', 'db', 'mailer', 'webhooks', 'mail-tokens', 'revocations', 'sessions', 'users'] })
