import fp from 'fastify-plugin'
import type { Recipient } from './account-mail.js'
import type { Origin } from './audit.js'

/** Deleting and disabling accounts, for their users and for operators. */
export interface Accounts {
  /**
   * Deletes the user and everything of it: its row, sessions, tokens, mailed tokens and mails. Its sessions
   * are refused on every instance at once and after any restart (tombstones keep their ids until their
   * access tokens expire); a notice goes to the address. False when there is no such user.
   */
  delete: (user: Recipient, origin: Origin) => Promise<boolean>
  /**
   * Disables the user: every session revoked on every instance, every mailed token dead; or enables it
   * again (its old sessions stay revoked). False when there is no such user. A user that already is so is left as
   * it is: no event, no audit record, no webhook.
   */
  setDisabled: (userId: number, disabled: boolean, origin: Origin) => Promise<boolean>
  /** Deletes every user of a cohort as delete() does, a batch at a time, without notices; answers how many. */
  deleteCohort: (tag: string, origin: Origin) => Promise<number>
}

/** Users deleted per transaction by deleteCohort. */
const cohortBatch = 500

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
  }
}

export default fp(async (fastify) => {
  const { audit, db, mailer, mailTokens, revocations, sessionManager, usersRepository, webhooks } = fastify

  fastify.decorate('accounts', {
    async delete (user, origin) {
      const sessions = await db.transaction(async (tx) => {
        const ids = await sessionManager.tombstoneAll(tx, [user.id])
        if (!await usersRepository.delete(tx, user.id)) return undefined
        await mailer.forget(tx, [user.email])
        await audit.forget(tx, [user.id])
        await webhooks.forget(tx, [user.id])
        await webhooks.enqueue(tx, 'user.deleted', { user_id: user.id }, user.id)
        await mailer.enqueue(tx, { kind: 'account_deleted', to: user.email, variables: { username: user.username } })
        return ids
      })
      if (sessions === undefined) return false
      revocations.remember(sessions)
      audit.record({ type: 'user.deleted', userId: user.id, ...origin, detail: { revoked_sessions: sessions.length } })
      fastify.log.info({ userId: user.id, revokedSessions: sessions.length }, 'user deleted')
      return true
    },

    async deleteCohort (tag, origin) {
      let deleted = 0
      for (;;) {
        const batch = await usersRepository.cohort(tag, cohortBatch)
        if (batch.length === 0) break
        const ids = batch.map((user) => user.id)
        const sessions = await db.transaction(async (tx) => {
          const tombstoned = await sessionManager.tombstoneAll(tx, ids)
          deleted += await usersRepository.deleteMany(tx, ids)
          await mailer.forget(tx, batch.map((user) => user.email))
          await audit.forget(tx, ids)
          await webhooks.forget(tx, ids)
          await webhooks.enqueueAll(tx, ids.map((id) => ({ type: 'user.deleted', data: { user_id: id }, userId: id })))
          return tombstoned
        })
        revocations.remember(sessions)
        for (const id of ids) audit.record({ type: 'user.deleted', userId: id, ...origin, detail: { tag } })
      }
      fastify.log.info({ tag, deleted }, 'cohort deleted')
      return deleted
    },

    async setDisabled (userId, disabled, origin) {
      const revoked = await db.transaction(async (tx) => {
        const outcome = await usersRepository.setDisabled(tx, userId, disabled)
        if (outcome !== 'changed') return outcome
        await webhooks.enqueue(tx, disabled ? 'user.disabled' : 'user.enabled', { user_id: userId }, userId)
        if (!disabled) return []
        await mailTokens.killAll(tx, userId, ['password_reset', 'email_verify', 'email_change'])
        return sessionManager.revokeAllIn(tx, userId)
      })
      if (revoked === 'missing') return false
      if (revoked === 'unchanged') return true
      revocations.remember(revoked)
      audit.record({ type: disabled ? 'user.disabled' : 'user.enabled', userId, ...origin, detail: disabled ? { revoked_sessions: revoked.length } : {} })
      fastify.log.info({ userId, revokedSessions: revoked.length }, disabled ? 'user disabled' : 'user enabled')
      return true
    }
  } satisfies Accounts)
}, { name: 'accounts', dependencies: ['audit', 'db', 'mailer', 'webhooks', 'mail-tokens', 'revocations', 'sessions', 'users'] })
