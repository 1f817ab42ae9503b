// Email verification and email change, with the mails delivered to a real SMTP server.
import { eq } from 'drizzle-orm'
import t from 'tap'
import { mailTokens, users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, newUser, registerAndLogin, testEnvironment } from '../helper.js'
import { codeOf, mailEnvironment, mailsTo, startMailServer, tokenOf } from '../mail-server.js'

t.test('email verification', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, { ...mailEnvironment(smtp), EMAIL_VERIFY_URL: 'myapp://verify#token={token}' }))
  const verify = (payload: object) => app.inject({ method: 'POST', url: '/auth/email/verify/', payload })
  const me = async (access: string) => (await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })).json()
  const resend = (access: string) => app.inject({ method: 'POST', url: '/auth/email/verify/resend/', headers: bearer(access) })

  t.test('registration mails a link to verify the address; the token verifies it, once', async (t) => {
    const { body, tokens } = await registerAndLogin(app)
    t.equal((await me(tokens.access)).email_verified, false)
    t.equal(claimsOf(tokens.access).email_verified, false, 'the access token says so too')
    const mail = await smtp.mailTo(body.email)
    t.equal(mail.subject, 'Confirm your email address for the service')
    t.match(mail.text, `myapp://verify#token=${tokenOf(mail)}`, 'the link is the template with the token')
    t.match(mail.html, `href="myapp://verify#token=${tokenOf(mail)}"`)
    t.match(mail.text, /Hello user/)
    t.same(mail.from, 'auth@example.com')

    t.equal((await verify({ token: tokenOf(mail) })).statusCode, 204)
    t.equal((await me(tokens.access)).email_verified, true)
    const refreshed = (await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })).json()
    t.equal(claimsOf(refreshed.access).email_verified, true, 'new access tokens carry it')
    const again = await verify({ token: tokenOf(mail) })
    t.equal(again.statusCode, 400)
    t.same(again.json().errors, { token: ['Invalid or expired token.'] })
  })

  t.test('the code verifies by the address', async (t) => {
    const { body, tokens } = await registerAndLogin(app)
    const mail = await smtp.mailTo(body.email)
    const wrong = await verify({ email: body.email, code: codeOf(mail) === '000000' ? '000001' : '000000' })
    t.same(wrong.json().errors, { code: ['Invalid or expired code.'] })
    t.equal((await verify({ email: body.email, code: codeOf(mail) })).statusCode, 204)
    t.equal((await me(tokens.access)).email_verified, true)
  })

  t.test('a resend: at most one a minute, then 429 with Retry-After; the new mail makes the old one dead', async (t) => {
    const { body, tokens } = await registerAndLogin(app)
    const first = await smtp.mailTo(body.email)
    const early = await resend(tokens.access)
    t.equal(early.statusCode, 429, 'the registration mail counts')
    t.equal(early.json().code, 'throttled')
    t.ok(Number(early.headers['retry-after']) > 0 && Number(early.headers['retry-after']) <= 60, `Retry-After ${early.headers['retry-after']}`)
    // As if the registration mail were a minute old.
    await app.db.update(mailTokens).set({ createdAt: new Date(Date.now() - 61_000) }).where(eq(mailTokens.emailKey, body.email.toLowerCase()))
    const sent = await resend(tokens.access)
    t.equal(sent.statusCode, 202)
    t.same(sent.json(), { detail: 'A verification mail is on its way, unless the address is verified already.' })
    const second = await smtp.mailTo(body.email)
    t.equal((await verify({ token: tokenOf(first) })).statusCode, 400, 'the older token is dead')
    t.equal((await verify({ token: tokenOf(second) })).statusCode, 204)
    t.equal((await resend(tokens.access)).statusCode, 202, 'verified: nothing to send, and nothing to refuse')
    t.same(await mailsTo(smtp, body.email, 300), [])
  })

  t.test('at most 5 an hour', async (t) => {
    const { body, tokens } = await registerAndLogin(app)
    await smtp.mailTo(body.email)
    const [user] = await app.db.select({ id: users.id }).from(users).where(eq(users.username, body.username))
    const statuses = []
    for (let i = 0; i < 5; i++) {
      await app.db.update(mailTokens).set({ createdAt: new Date(Date.now() - 61_000 * (6 - i)) }).where(eq(mailTokens.userId, user!.id))
      statuses.push((await resend(tokens.access)).statusCode)
    }
    t.same(statuses, [202, 202, 202, 202, 429])
  })

  t.test('without a Bearer token a resend is 401', async (t) => {
    t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify/resend/' })).statusCode, 401)
  })
})

t.test('REQUIRE_VERIFIED_EMAIL=on: the right password on an unverified address is 403 email_unverified', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, { ...mailEnvironment(smtp), REQUIRE_VERIFIED_EMAIL: 'on' }))
  const body = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).statusCode, 201)
  const login = (password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password } })
  const wrong = await login('not the password')
  t.equal(wrong.statusCode, 401, 'a wrong password learns nothing')
  t.equal(wrong.json().code, 'invalid_credentials')
  const unverified = await login(body.password)
  t.equal(unverified.statusCode, 403)
  t.same(unverified.json(), { statusCode: 403, error: 'Forbidden', code: 'email_unverified', message: 'Verify your email address before logging in: use the link or code mailed to you.', detail: 'Verify your email address before logging in: use the link or code mailed to you.' })
  const mail = await smtp.mailTo(body.email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify/', payload: { token: tokenOf(mail) } })).statusCode, 204)
  t.equal((await login(body.password)).statusCode, 200)
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /auth_logins_total\{outcome="email_unverified"\} 1/)
})

t.test('email change', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, mailEnvironment(smtp)))
  const change = (access: string, payload: object) => app.inject({ method: 'POST', url: '/auth/email/change/', headers: bearer(access), payload })
  const confirm = (payload: object) => app.inject({ method: 'POST', url: '/auth/email/change/confirm/', payload })
  const me = async (access: string) => (await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })).json()
  async function user () {
    const registered = await registerAndLogin(app)
    await smtp.mailTo(registered.body.email)
    return registered
  }
  const newAddress = () => `moved-${newUser().username}@example.org`

  t.test('a confirmation to the new address, a notice to the old; the token changes it, verified', async (t) => {
    const { body, tokens } = await user()
    const target = newAddress()
    const asked = await change(tokens.access, { password: body.password, new_email: target })
    t.equal(asked.statusCode, 202)
    t.same(asked.json(), { detail: 'A confirmation mail is on its way to the new address.' })
    const confirmation = await smtp.mailTo(target)
    t.equal(confirmation.subject, 'Confirm your new email address for the service')
    const notice = await smtp.mailTo(body.email)
    t.equal(notice.subject, 'Your email address for the service is being changed')
    t.match(notice.text, 'm***@example.org', 'the new address, masked')
    t.notMatch(notice.text, /Code:|Token:/)
    t.equal((await me(tokens.access)).email, body.email, 'nothing changes before the confirmation')

    // A reset asked for before the change, mailed to the old address, dies with it.
    await app.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email: body.email } })
    const reset = await smtp.mailTo(body.email)
    t.equal((await confirm({ token: tokenOf(confirmation) })).statusCode, 204)
    t.match(await me(tokens.access), { email: target, email_verified: true })
    t.equal((await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: target, password: body.password } })).statusCode, 200, 'the new address logs in')
    t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { token: tokenOf(reset), new_password: 'a brand new passphrase' } })).statusCode, 400, 'the reset sent to the old address is dead')
    t.equal((await confirm({ token: tokenOf(confirmation) })).statusCode, 400, 'a token works once')
  })

  t.test('the code of the confirmation works with the new address', async (t) => {
    const { body, tokens } = await user()
    const target = newAddress()
    await change(tokens.access, { password: body.password, new_email: target })
    const confirmation = await smtp.mailTo(target)
    t.equal((await confirm({ email: target, code: codeOf(confirmation) })).statusCode, 204)
    t.equal((await me(tokens.access)).email, target)
  })

  t.test('a wrong password, an invalid or the same address: 400 on the field', async (t) => {
    const { body, tokens } = await user()
    const wrong = await change(tokens.access, { password: 'not the password', new_email: newAddress() })
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json().errors, { password: ['Your password was entered incorrectly.'] })
    const invalid = await change(tokens.access, { password: body.password, new_email: 'not an address' })
    t.same(invalid.json().errors, { new_email: ['Enter a valid email address.'] })
    const same = await change(tokens.access, { password: body.password, new_email: body.email.toUpperCase() })
    t.same(same.json().errors, { new_email: ['This is already your email address.'] })
    t.same(await mailsTo(smtp, body.email, 300), [], 'no mail for any of them')
    t.equal((await app.inject({ method: 'POST', url: '/auth/email/change/', payload: { password: body.password, new_email: newAddress() } })).statusCode, 401, 'a Bearer token is required')
  })

  t.test('an address another account has: the same 202, and no mail', async (t) => {
    const { body, tokens } = await user()
    const other = await user()
    const asked = await change(tokens.access, { password: body.password, new_email: other.body.email })
    t.equal(asked.statusCode, 202)
    t.same(asked.json(), { detail: 'A confirmation mail is on its way to the new address.' })
    t.same(await mailsTo(smtp, other.body.email, 500), [], 'no confirmation')
    t.same(await mailsTo(smtp, body.email, 10), [], 'no notice either: nothing will change')
  })

  t.test('an address taken meanwhile: 409 email_taken at the confirmation', async (t) => {
    const { body, tokens } = await user()
    const target = newAddress()
    await change(tokens.access, { password: body.password, new_email: target })
    const confirmation = await smtp.mailTo(target)
    t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ email: target.toUpperCase() }) })).statusCode, 201)
    const taken = await confirm({ token: tokenOf(confirmation) })
    t.equal(taken.statusCode, 409)
    t.equal(taken.json().code, 'email_taken')
    t.equal((await me(tokens.access)).email, body.email, 'the address is unchanged')
  })
})

t.test('RATE_LIMIT_MAIL limits email changes per user too, whatever the client', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, { ...mailEnvironment(smtp), RATE_LIMIT: 'on', RATE_LIMIT_MAIL: '2/1h', TRUST_PROXY: '127.0.0.1' }))
  const { body, tokens } = await registerAndLogin(app)
  const statuses = []
  for (let i = 0; i < 3; i++) {
    statuses.push((await app.inject({
      method: 'POST', url: '/auth/email/change/', headers: { ...bearer(tokens.access), 'x-forwarded-for': `203.0.113.${i}` }, payload: { password: body.password, new_email: `elsewhere${i}@example.org` }
    })).statusCode)
  }
  t.same(statuses, [202, 202, 429], 'two mails, then the user waits on a third address')
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /auth_throttled_total\{limit="mail"\} 1/)
})

t.test('wrong passwords at an email change count as failed logins', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', LOGIN_FAILURES_PER_CLIENT: '2/15m' }))
  const { body, tokens } = await registerAndLogin(app)
  const change = (password: string) => app.inject({ method: 'POST', url: '/auth/email/change/', headers: bearer(tokens.access), payload: { password, new_email: 'elsewhere@example.org' } })
  t.same([(await change('guess one')).statusCode, (await change('guess two')).statusCode, (await change(body.password)).statusCode], [400, 400, 429])
})
