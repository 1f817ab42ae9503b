import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { and, count, eq, inArray, lte, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import type { MailConfig } from '../src/config.js'
import { prepared, type Database } from '../src/db/connect.js'
import { mailOutbox } from '../src/db/schema.js'
import { loadTemplates, type MailKind, type MailVariables } from '../src/mail/templates.js'

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

const wakeChannel = 'auth_mail'
/** Mails one instance claims at a time. */
const batchSize = 20
/** How long a claimed mail stays claimed: longer than the transport's timeouts, so that no two send it at once. */
const claimFor = 3 * 60_000
const maxBackoff = 15 * 60_000
/** Kinds whose recipient is erased with the body: the notice of a deletion must not keep the address it went to. */
const forgetsRecipient = new Set<string>(['account_deleted'])
const erased = (row: { kind: string, recipient: string }) => forgetsRecipient.has(row.kind) ? { body: null, recipient: '' } : { body: null }
/** 1 s after the first failure, doubling to 15 minutes. */
export const backoff = (attempts: number) => Math.min(1000 * 2 ** (attempts - 1), maxBackoff)

/** A transport's failure as it may be stored and logged: its code and the server's answer, nothing it was sent. */
function describeFailure (error: unknown): string {
  const { code, responseCode, message } = error as { code?: string, responseCode?: number, message?: string }
  return [code, responseCode, message].filter((part) => part !== undefined).join(' ').slice(0, 500)
}

export default fp<MailerOptions>(async (fastify, { mail, dataDir, pollInterval = 1000 }) => {
  const { db, notifications } = fastify
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
      await mkdir(mailDir, { recursive: true, mode: 0o700 })
      const file = join(mailDir, `${new Date().toISOString().replaceAll(':', '-')}-${row.id}-${row.kind}.eml`)
      await writeFile(file, (info as { message: Buffer }).message, { mode: 0o600 })
      fastify.log.info({ mailId: row.id, kind: row.kind, to: row.recipient, file }, 'mail written to a file, not delivered')
    } else {
      fastify.log.info({ mailId: row.id, kind: row.kind, to: row.recipient }, 'mail sent')
    }
  }

  async function attempt (row: Claimed): Promise<void> {
    try {
      await send(row)
    } catch (error) {
      const failure = describeFailure(error)
      const deadline = row.createdAt.getTime() + mail.retryFor * 1000
      if (Date.now() >= deadline) {
        await db.update(mailOutbox).set({ status: 'failed', ...erased(row), lastError: failure }).where(eq(mailOutbox.id, row.id))
        mails.inc({ kind: row.kind, outcome: 'failed' })
        fastify.log.error({ mailId: row.id, kind: row.kind, to: row.recipient, attempts: row.attempts, failure }, 'mail failed: given up after MAIL_RETRY_FOR')
        return
      }
      const next = new Date(Math.min(Date.now() + backoff(row.attempts), deadline))
      await db.update(mailOutbox).set({ nextAttemptAt: next, lastError: failure }).where(eq(mailOutbox.id, row.id))
      mails.inc({ kind: row.kind, outcome: 'retried' })
      fastify.log.warn({ mailId: row.id, kind: row.kind, to: row.recipient, attempts: row.attempts, failure, retryAt: next }, 'mail not sent: retrying')
      return
    }
    await db.update(mailOutbox).set({ status: 'sent', ...erased(row), sentAt: new Date(), lastError: null }).where(eq(mailOutbox.id, row.id))
    mails.inc({ kind: row.kind, outcome: 'sent' })
  }

  /** One look for mails due: fails those whose content expired unsent, then claims and sends a batch. Answers how many it claimed. */
  async function pass (): Promise<number> {
    const now = new Date()
    const expired = await db.update(mailOutbox).set({ status: 'failed', body: null, lastError: 'expired before it could be sent' })
      .where(and(eq(mailOutbox.status, 'queued'), lte(mailOutbox.eraseAt, now)))
      .returning({ id: mailOutbox.id, kind: mailOutbox.kind, to: mailOutbox.recipient })
    for (const row of expired) {
      mails.inc({ kind: row.kind, outcome: 'failed' })
      fastify.log.error({ mailId: row.id, kind: row.kind, to: row.to }, 'mail failed: what it carries expired before it could be sent')
    }
    const due = db.select({ id: mailOutbox.id }).from(mailOutbox)
      .where(and(eq(mailOutbox.status, 'queued'), lte(mailOutbox.nextAttemptAt, now)))
      .orderBy(mailOutbox.id).limit(batchSize).for('update', { skipLocked: true })
    const claimed = await db.update(mailOutbox)
      .set({ attempts: sql`${mailOutbox.attempts} + 1`, nextAttemptAt: new Date(now.getTime() + claimFor) })
      .where(inArray(mailOutbox.id, due)).returning()
    for (const row of claimed) await attempt(row)
    return claimed.length
  }

  // One delivery at a time per instance; a wake-up during one runs another after it.
  let running: Promise<void> | undefined
  let again = false
  let closed = false
  function deliver (): Promise<void> {
    if (closed) return Promise.resolve()
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      // A full batch may leave more due; a wake-up meanwhile may have queued more. Both end at close.
      let more = true
      while (more) {
        again = false
        more = await pass() === batchSize || again
        if (closed) more = false
      }
    })().finally(() => { running = undefined })
    return running
  }
  const deliverLogged = () => {
    deliver().catch((error: unknown) => fastify.log.error({ err: error }, 'mail delivery failed: retrying at the next look'))
  }

  fastify.decorate('mailer', {
    async enqueue (tx, outgoing) {
      await tx.insert(mailOutbox).values({
        kind: outgoing.kind,
        recipient: outgoing.to,
        body: { ...outgoing.variables, email: outgoing.to } as Record<string, string>,
        eraseAt: outgoing.expiresAt
      })
      await tx.execute(sql`select pg_notify(${wakeChannel}, '')`)
    },
    deliver,
    async forget (tx, addresses) {
      await tx.delete(mailOutbox).where(inArray(mailOutbox.recipient, addresses))
    },
    async queued () {
      const [row] = await prepared(db.select({ queued: count() }).from(mailOutbox).where(eq(mailOutbox.status, 'queued')))
      return row!.queued
    }
  } satisfies Mailer)

  let unlisten: (() => Promise<void>) | undefined
  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    // Woken after each commit that queued a mail, on every instance; the timer brings retries when they fall due.
    unlisten = await notifications.listen(wakeChannel, deliverLogged, async () => { deliverLogged() })
    timer = setInterval(deliverLogged, pollInterval)
    timer.unref()
  })
  // Before the database closes under a delivery in flight.
  fastify.addHook('preClose', async () => {
    closed = true
    clearInterval(timer)
    await unlisten?.()
    await running?.catch(() => {})
    transport.close()
  })
}, { name: 'mailer', dependencies: ['db', 'metrics'] })
