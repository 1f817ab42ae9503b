// The outbox: mails are rows, sent by a worker on every instance, retried while the SMTP server is down or
// refuses, written as .eml files without SMTP_URL.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { eq } from 'drizzle-orm'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import app from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { mailOutbox } from '../../src/db/schema.js'
import { serverOptions } from '../../src/options.js'
import { backoff } from '../../plugins/mailer.js'
import { build, newUser, postgresUrl, testEnvironment } from '../helper.js'
import { codeOf, mailEnvironment, mailsTo, startMailServer, tokenOf } from '../mail-server.js'

/** The app with its log lines, parsed, in `lines`. */
async function buildLogging (t: Test, environment: Record<string, string>, lines: Array<Record<string, unknown>>): Promise<FastifyInstance> {
  const config = loadConfig({ ...environment, LOG_LEVEL: 'info' })
  const options = serverOptions(config)
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const server = Fastify({ ...options, logger: { ...(options.logger as object), stream } })
  await server.register(fp(app), { config })
  await server.ready()
  t.teardown(() => server.close())
  return server
}

const register = (server: FastifyInstance, body = newUser()) =>
  server.inject({ method: 'POST', url: '/auth/register/', payload: body }).then(() => body)
const requestReset = (server: FastifyInstance, email: string) =>
  server.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email } })
const metrics = async (server: FastifyInstance) => (await server.inject({ method: 'GET', url: '/metrics' })).body
async function rowsTo (server: FastifyInstance, recipient: string) {
  return server.db.select().from(mailOutbox).where(eq(mailOutbox.recipient, recipient)).orderBy(mailOutbox.id)
}
async function until (condition: () => Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms
  while (!await condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

t.test('backoff doubles from 1 s to 15 minutes', async (t) => {
  t.same([1, 2, 3, 10, 11, 30].map(backoff), [1000, 2000, 4000, 512_000, 900_000, 900_000])
})

t.test('SMTP down when the request comes: the mail is queued, retried, and arrives exactly once when it is back', async (t) => {
  const smtp = await startMailServer(t)
  await smtp.stop()
  const lines: Array<Record<string, unknown>> = []
  const server = await buildLogging(t, await testEnvironment(t, mailEnvironment(smtp)), lines)
  const body = await register(server)
  await until(async () => lines.some((line) => line.msg === 'mail not sent: retrying'), 5000)
  const [queued] = await rowsTo(server, body.email)
  t.equal(queued!.status, 'queued')
  t.ok(queued!.attempts >= 1, 'tried')
  t.match(queued!.lastError, /ECONNREFUSED/)
  t.ok(queued!.body !== null, 'the body is kept until it is sent')
  t.match(await metrics(server), /auth_mail_queued 1\b/)
  t.match(await metrics(server), /auth_mail_total\{kind="email_verify",outcome="retried"\} [1-9]/)

  await smtp.start()
  const mail = await smtp.mailTo(body.email, 15_000)
  t.equal(mail.subject, 'Confirm your email address for the service')
  // The row is marked once the server has answered.
  await until(async () => (await rowsTo(server, body.email))[0]?.status === 'sent', 5000)
  const [sent] = await rowsTo(server, body.email)
  t.equal(sent!.status, 'sent')
  t.equal(sent!.body, null, 'erased once sent')
  t.same(await mailsTo(smtp, body.email, 1500), [], 'exactly once')
  t.match(await metrics(server), /auth_mail_total\{kind="email_verify",outcome="sent"\} 1/)
  t.match(await metrics(server), /auth_mail_queued 0\b/)
  const logged = JSON.stringify(lines)
  t.notOk(logged.includes(tokenOf(mail)) || logged.includes(`"${codeOf(mail)}"`), 'no token or code in the logs')
  t.notOk(logged.includes('secret-pass'), 'nor the SMTP password')
})

t.test('a server that refuses gets retries, then the mail is failed, its body erased, an error logged', async (t) => {
  const smtp = await startMailServer(t)
  smtp.refuse = true
  const lines: Array<Record<string, unknown>> = []
  const server = await buildLogging(t, await testEnvironment(t, { ...mailEnvironment(smtp), MAIL_RETRY_FOR: '2s' }), lines)
  const body = await register(server)
  await until(async () => (await rowsTo(server, body.email))[0]?.status === 'failed', 8000)
  const [failed] = await rowsTo(server, body.email)
  t.equal(failed!.status, 'failed')
  t.ok(failed!.attempts >= 2, `${failed!.attempts} attempts`)
  t.equal(failed!.body, null)
  t.match(failed!.lastError, /EENVELOPE 550/)
  const error = lines.find((line) => line.msg === 'mail failed: given up after MAIL_RETRY_FOR')
  t.match(error, { level: 50, kind: 'email_verify', to: body.email })
  t.match(await metrics(server), /auth_mail_total\{kind="email_verify",outcome="failed"\} 1/)
  smtp.refuse = false
  await server.mailer.deliver()
  t.same(await mailsTo(smtp, body.email, 500), [], 'a failed mail is not sent later')
})

t.test('a mail whose token expires unsent is failed unsent, its body erased', async (t) => {
  const smtp = await startMailServer(t)
  await smtp.stop()
  const lines: Array<Record<string, unknown>> = []
  const server = await buildLogging(t, await testEnvironment(t, { ...mailEnvironment(smtp), VERIFY_TOKEN_TTL: '1s' }), lines)
  const body = await register(server)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await server.mailer.deliver()
  const [expired] = await rowsTo(server, body.email)
  t.match(expired, { status: 'failed', body: null, lastError: 'expired before it could be sent' })
  t.ok(lines.some((line) => line.msg === 'mail failed: what it carries expired before it could be sent' && line.level === 50))
  await smtp.start()
  t.same(await mailsTo(smtp, body.email, 1500), [])
})

t.test('without SMTP_URL: one warning at start, then .eml files under DATA_DIR/mail/ that only their owner reads', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const environment = await testEnvironment(t)
  const server = await buildLogging(t, environment, lines)
  t.equal(lines.filter((line) => line.msg === 'SMTP_URL is not set: mails are written as .eml files, not delivered').length, 1)
  const body = await register(server)
  await requestReset(server, body.email)
  await server.accountMail.settled()
  await until(async () => (await rowsTo(server, body.email)).every((row) => row.status === 'sent'), 5000)
  const mailDir = join(environment.DATA_DIR!, 'mail')
  const files = readdirSync(mailDir).sort()
  t.equal(files.length, 2)
  t.match(files, [/-email_verify\.eml$/, /-password_reset\.eml$/])
  t.equal(statSync(mailDir).mode & 0o777, 0o700)
  const eml = readFileSync(join(mailDir, files[1]!), 'utf8')
  t.equal(statSync(join(mailDir, files[1]!)).mode & 0o777, 0o600)
  t.match(eml, /^Subject: Reset your password for the service$/m)
  t.match(eml, new RegExp(`^To: ${body.email}$`, 'm'))
  t.match(eml, /^Auto-Submitted: auto-generated$/m)
  t.match(eml, /Code: [0-9]{6}/)
  const written = lines.filter((line) => line.msg === 'mail written to a file, not delivered')
  t.equal(written.length, 2)
  t.match(written[1], { kind: 'password_reset', to: body.email })
  const code = /Code: ([0-9]{6})/.exec(eml)![1]!
  t.notOk(JSON.stringify(lines).includes(code), 'the log line carries no code')

  // The directory is not looked for at each mail: removed, it is made again; made unusable, the mail is retried.
  rmSync(mailDir, { recursive: true })
  const again = await register(server)
  await until(async () => (await rowsTo(server, again.email))[0]!.status === 'sent', 5000)
  t.match(readdirSync(mailDir), [/-email_verify\.eml$/])
  t.equal(statSync(mailDir).mode & 0o777, 0o700)
  rmSync(mailDir, { recursive: true })
  writeFileSync(mailDir, '')
  const blocked = await register(server)
  await until(async () => (await rowsTo(server, blocked.email))[0]!.lastError !== null, 5000)
  t.match(await rowsTo(server, blocked.email), [{ status: 'queued', lastError: /ENOTDIR/ }])
})

t.test('MAIL_TEMPLATES_DIR replaces one template, and a broken one fails the start', async (t) => {
  const smtp = await startMailServer(t)
  const templates = t.testdir({ 'email_verify.subject.txt': 'Welcome to {{app_name}}, {{username}}\n' })
  const server = await build(t, await testEnvironment(t, { ...mailEnvironment(smtp), MAIL_TEMPLATES_DIR: templates, APP_NAME: 'Acme' }))
  const body = await register(server)
  const mail = await smtp.mailTo(body.email)
  t.equal(mail.subject, `Welcome to Acme, ${body.username}`)
  t.match(mail.text, /Code: [0-9]{6}/, 'the other parts are the built-in ones')
  t.match(mail.html, /Acme/)

  await server.close()
  await server.mailer.deliver()
  t.pass('a delivery asked for after the close does nothing')

  const broken = t.testdir({ 'email_verify.txt': 'Hello {{nobody}}' })
  await t.rejects(build(t, await testEnvironment(t, { MAIL_TEMPLATES_DIR: broken })), /nobody/)
})

t.test('two instances on one PostgreSQL: each mail is delivered once', {
  skip: postgresUrl === undefined && 'two instances share a database only on PostgreSQL'
}, async (t) => {
  const smtp = await startMailServer(t)
  const environment = await testEnvironment(t, mailEnvironment(smtp))
  const one = await build(t, environment)
  const two = await build(t, environment)
  const users = await Promise.all(Array.from({ length: 20 }, (_, index) => register(index % 2 === 0 ? one : two)))
  for (const user of users) await smtp.mailTo(user.email)
  await Promise.all([one.mailer.deliver(), two.mailer.deliver()])
  for (const user of users) t.same(await mailsTo(smtp, user.email, 0), [])
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(smtp.received.length, 20, 'twenty mails, no duplicate')
  t.equal(new Set(smtp.received.map((mail) => mail.to[0])).size, 20)
})
