// Deleting one's own account, and accounts disabled by an operator.
import { eq, sql } from 'drizzle-orm'
import t from 'tap'
import { revokedSessions, users } from '../../src/db/schema.js'
import { bearer, build, postgresUrl, registerAndLogin, testEnvironment } from '../helper.js'
import { mailEnvironment, mailsTo, startMailServer, tokenOf } from '../mail-server.js'

/** The rows of db.execute(): an array on postgres.js, `{ rows }` on PGlite. */
const rowsOf = <T>(result: unknown): T[] => Array.isArray(result) ? result : (result as { rows: T[] }).rows

t.test('DELETE /auth/me/', async (t) => {
  const smtp = await startMailServer(t)
  const environment = await testEnvironment(t, mailEnvironment(smtp))
  let app = await build(t, environment)
  const remove = (access: string, password: string) => app.inject({ method: 'DELETE', url: '/auth/me/', headers: bearer(access), payload: { password } })
  const { body, user, tokens } = await registerAndLogin(app)
  await smtp.mailTo(body.email)
  const other = await registerAndLogin(app)

  const wrong = await remove(tokens.access, 'not the password')
  t.equal(wrong.statusCode, 400)
  t.same(wrong.json().errors, { password: ['Your password was entered incorrectly.'] })
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).statusCode, 200, 'a wrong password deletes nothing')

  // A reset pending when the account goes.
  await app.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email: body.email } })
  const reset = await smtp.mailTo(body.email)
  const deleted = await remove(tokens.access, body.password)
  t.equal(deleted.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).json().code, 'token_revoked', 'its access token is refused at once')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })).statusCode, 401, 'and its refresh token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { token: tokenOf(reset), new_password: 'a brand new passphrase' } })).statusCode, 400, 'its pending reset is dead')
  const notice = await smtp.mailTo(body.email)
  t.equal(notice.subject, 'Your account for the service was deleted')
  await app.mailer.deliver()

  // Nothing names the user any more, in any table.
  const tables = rowsOf<{ tablename: string }>(await app.db.execute(sql`select tablename from pg_tables where schemaname = 'public'`)).map((row) => row.tablename)
  for (const table of tables) {
    const dump = rowsOf<{ row: string }>(await app.db.execute(sql`select row_to_json(t)::text as row from ${sql.identifier(table)} t`)).map((row) => row.row).join('\n')
    t.notOk(dump.includes(body.username) || dump.toLowerCase().includes(body.email.toLowerCase()), `${table} names no deleted user`)
  }
  t.ok(await app.db.$count(revokedSessions) >= 1, 'a tombstone holds the session id until its access tokens expire')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(other.tokens.access) })).statusCode, 200, 'other users are untouched')

  // After a restart, the revoked set rebuilt from the database still refuses the deleted user's token.
  await app.close()
  app = await build(t, environment)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).json().code, 'token_revoked', 'refused after a restart')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).statusCode, 201, 'the username and the email can be registered again')
  t.not((await app.db.select({ id: users.id }).from(users).where(eq(users.username, body.username)))[0]!.id, user.id)
})

t.test('a deletion needs the password, and wrong passwords count as failed logins', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', LOGIN_FAILURES_PER_CLIENT: '2/15m' }))
  const { body, tokens } = await registerAndLogin(app)
  const remove = (password: string) => app.inject({ method: 'DELETE', url: '/auth/me/', headers: bearer(tokens.access), payload: { password } })
  t.same([(await remove('guess one')).statusCode, (await remove('guess two')).statusCode, (await remove(body.password)).statusCode], [400, 400, 429])
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me/', payload: { password: body.password } })).statusCode, 401, 'a Bearer token is required')
})

t.test('a deletion is refused by a second instance within a second', {
  skip: postgresUrl === undefined && 'two instances share a database only on PostgreSQL'
}, async (t) => {
  const environment = await testEnvironment(t)
  const one = await build(t, environment)
  const two = await build(t, environment)
  const { body, tokens } = await registerAndLogin(one)
  t.equal((await two.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).statusCode, 200)
  t.equal((await one.inject({ method: 'DELETE', url: '/auth/me/', headers: bearer(tokens.access), payload: { password: body.password } })).statusCode, 204)
  const started = Date.now()
  let status = 200
  while (status === 200 && Date.now() - started < 1000) {
    status = (await two.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).statusCode
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(status, 401, `refused by the other instance after ${Date.now() - started} ms`)
})

t.test('a disabled account', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, mailEnvironment(smtp)))
  const { body, user, tokens } = await registerAndLogin(app)
  await smtp.mailTo(body.email)
  const login = (password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password } })

  t.equal(await app.accounts.setDisabled(user.id, true, {}), true)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).json().code, 'token_revoked', 'its sessions are revoked at once')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })
  t.equal(refresh.statusCode, 401)
  t.equal(refresh.json().code, 'token_revoked')
  const right = await login(body.password)
  t.equal(right.statusCode, 403, 'the right password learns that the account is disabled')
  t.same(right.json(), { statusCode: 403, error: 'Forbidden', code: 'account_disabled', message: 'This account is disabled.', detail: 'This account is disabled.' })
  const wrong = await login('not the password')
  t.equal(wrong.statusCode, 401, 'a wrong password learns nothing')
  t.equal(wrong.json().code, 'invalid_credentials')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email: body.email } })).statusCode, 202)
  await app.accountMail.settled()
  t.same(await mailsTo(smtp, body.email, 500), [], 'a reset sends nothing')

  t.equal(await app.accounts.setDisabled(user.id, false, {}), true)
  t.equal((await login(body.password)).statusCode, 200, 'enabled: it logs in again')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })).json().code, 'token_revoked', 'its old sessions stay revoked')
  t.equal(await app.accounts.setDisabled(999_999, true, {}), false, 'no such user')
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /auth_logins_total\{outcome="disabled"\} 1/)
})
