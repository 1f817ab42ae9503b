import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { and, eq, inArray, lte } from 'drizzle-orm'
import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import type { MailConfig } from '../src/config.js'
import type { Database } from '../src/db/connect.js'
import { mailOutbox } from '../src/db/schema.js'
import { loadTemplates, type MailKind, type MailVariables } from '../src/mail/templates.js'
import { startOutbox } from '../src/outbox.js'

export interface MailerOptions {
  mail: MailConfig
  /** Without an SMTP URL, mails are written under dataDir/mail/. */
  dataDir: string
  /** Milliseconds between looks for mails due, on top of the wake-up each queued mail sends. */
  pollInterval?: number
}

export interface OutgoingMail {
  kind: MailKind
  to: string
  variables: Omit<MailVariables, 'app_name' | 'email'>
  /** When what it carries expires: unsent by then, it is failed and its body erased. */
  expiresAt?: Date
}

/**
 * A durable outbox: mails are rows, queued in the transaction of the state that needs them, and sent by a
 * worker on every instance (FOR UPDATE SKIP LOCKED, so no two send one mail at once), retried with
 * exponential backoff for up to MAIL_RETRY_FOR. A body is erased once its mail is sent or failed.
 */
export interface Mailer {
  /** In tx: queues a mail; every instance is woken to send it once tx commits. */
  enqueue: (tx: Database, mail: OutgoingMail) => Promise<void>
  /** Sends the mails due now, and those that fall due meanwhile; resolves once none is left. */
  deliver: () => Promise<void>
  /** Mails waiting to be sent, retries included. */
  queued: () => Promise<number>
  /** In tx: every mail to these addresses, sent or not, is deleted: their owners are deleted. */
  forget: (tx: Database, addresses: string[]) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

/** How long a claimed mail stays claimed: longer than the transport's timeouts, so that no two send it at once. */
const claimFor = 3 * 60_000
/** Kinds whose recipient is erased with the body: the notice of a deletion must not keep the address it went to. */
const forgetsRecipient = new Set<string>(['account_deleted'])
const erased = (row: { kind: string, recipient: string }) => forgetsRecipient.has(row.kind) ? { body: null, recipient: '' } : { body: null }
export { backoff } from '../src/outbox.js'

/** A transport's failure as it may be stored and logged: its code and the server's answer, nothing it was sent. */
function describeFailure (error: unknown): string {
  const { code, responseCode, message } = error as { code?: string, responseCode?: number, message?: string }
  return [code, responseCode, message].filter((part) => part !== undefined).join(' ').slice(0, 500)
}

export default fp<MailerOptions>(async (fastify, { mail, dataDir, pollInterval = 1000 }) => {
  const { db } = fastify
  const { mails } = fastify.authMetrics
  const templates = await loadTemplates(mail.templatesDir)
  const mailDir = join(dataDir, 'mail')
  const transport = mail.smtpUrl === undefined
    ? nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
    : nodemailer.createTransport({ url: mail.smtpUrl, pool: true, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000 })
  if (mail.smtpUrl === undefined) {
    fastify.log.warn({ mailDir }, 'SMTP_URL is not set: mails are written as .eml files, not delivered')
  }

  type Claimed = typeof mailOutbox.$inferSelect

  async function send (row: Claimed): Promise<void> {
    const rendered = templates.render(row.kind as MailKind, { ...row.body, app_name: mail.appName } as unknown as MailVariables)
    const message = { from: mail.from, to: row.recipient, ...rendered, headers: { 'auto-submitted': 'auto-generated' } }
    const info = await transport.sendMail(message)
    if (mail.smtpUrl === undefined) {
      const file = join(mailDir, `${new Date().toISOString().replaceAll(':', '-')}-${row.id}-${row.kind}.eml`)
      const write = () => writeFile(file, (info as { message: Buffer }).message, { mode: 0o600 })
      // The directory is made by the first mail, and again if it was removed; not looked for at each.
      await write().catch(async (error: unknown) => {
        if ((error as { code?: string }).code !== 'ENOENT') throw error
        await mkdir(mailDir, { recursive: true, mode: 0o700 })
        await write()
      })
      fastify.log.info({ mailId: row.id, kind: row.kind, to: row.recipient, file }, 'mail written to a file, not delivered')
    } else {
      fastify.log.info({ mailId: row.id, kind: row.kind, to: row.recipient }, 'mail sent')
    }
  }

  const outbox = startOutbox(fastify, {
    table: mailOutbox,
    channel: 'auth_mail',
    batchSize: 20,
    claimFor,
    retryFor: mail.retryFor,
    pollInterval,
    lookFailed: 'mail delivery failed: retrying at the next look',
    send,
    describeFailure,
    erased,
    settled (row, result) {
      mails.inc({ kind: row.kind, outcome: result.outcome })
      const logged = { mailId: row.id, kind: row.kind, to: row.recipient, attempts: row.attempts }
      if (result.outcome === 'failed') {
        fastify.log.error({ ...logged, failure: result.failure }, 'mail failed: given up after MAIL_RETRY_FOR')
      } else if (result.outcome === 'retried') {
        fastify.log.warn({ ...logged, failure: result.failure, retryAt: result.retryAt }, 'mail not sent: retrying')
      }
    },
    // Mails whose content expired unsent are failed before each claim.
    async beforeClaim (now) {
      const expired = await db.update(mailOutbox).set({ status: 'failed', body: null, lastError: 'expired before it could be sent' })
        .where(and(eq(mailOutbox.status, 'queued'), lte(mailOutbox.eraseAt, now)))
        .returning({ id: mailOutbox.id, kind: mailOutbox.kind, to: mailOutbox.recipient })
      for (const row of expired) {
        mails.inc({ kind: row.kind, outcome: 'failed' })
        fastify.log.error({ mailId: row.id, kind: row.kind, to: row.to }, 'mail failed: what it carries expired before it could be sent')
      }
    },
    close: () => transport.close()
  })

  fastify.decorate('mailer', {
    async enqueue (tx, outgoing) {
      await outbox.enqueue(tx, tx.insert(mailOutbox).values({
        kind: outgoing.kind,
        recipient: outgoing.to,
        body: { ...outgoing.variables, email: outgoing.to } as Record<string, string>,
        eraseAt: outgoing.expiresAt
      }))
    },
    deliver: outbox.deliver,
    async forget (tx, addresses) {
      await tx.delete(mailOutbox).where(inArray(mailOutbox.recipient, addresses))
    },
    queued: outbox.queued
  } satisfies Mailer)
}, { name: 'mailer', dependencies: ['db', 'metrics'] })
