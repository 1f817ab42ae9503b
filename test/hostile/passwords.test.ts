import t from 'tap'
import { bearer, build, newUser, registerAndLogin } from '../helper.js'
import { assertAnswer, assertStillAnswers, issueMailToken, login, mailTokenState, register, type Expected } from './cases.js'

// The rule (README, src/identity.ts, plugins/password.ts): 8 to 256 code points, checked before
// any hashing; NFC-normalised before hashing, otherwise kept as typed (spaces, case, NFKC forms);
// never truncated; refused when common (case-insensitively), or when it contains the username or
// the email's local part (both NFKC and case-folded).
// Each 201 and each login costs an argon2 hash, so the tables that hash are short.

const created: Expected = { status: 201 }
const invalid: Expected = { status: 400, code: 'invalid_request' }
const loggedIn: Expected = { status: 200 }
const badCredentials: Expected = { status: 401, code: 'invalid_credentials' }

const accepted: Expected = { status: 202 }
const cafeNfc = 'Caf\u00E9 au lait, s\u00E9same'
const cafeNfd = cafeNfc.normalize('NFD')

t.test('hostile passwords', async (t) => {
  const app = await build(t)

  t.test('registration: lengths in code points, and the policy', async (t) => {
    const seven = 'q7#Lm2$'
    const cases: Array<[string, Partial<ReturnType<typeof newUser>>, Expected, string?]> = [
      ['7 code points', { password: seven }, invalid, 'Ensure this field has at least 8 characters.'],
      ['8 code points', { password: `${seven}Z` }, created],
      ['256 code points', { password: `${seven}Z`.repeat(32) }, created],
      ['257 code points', { password: `${`${seven}Z`.repeat(32)}!` }, invalid, 'Ensure this field has no more than 256 characters.'],
      ['7 emoji (14 UTF-16 units)', { password: '🔐'.repeat(7) }, invalid, 'Ensure this field has at least 8 characters.'],
      ['8 emoji', { password: '🔐'.repeat(8) }, created],
      ['256 code points, half of them astral', { password: '🔑a'.repeat(128) }, created],
      ['257 code points, half of them astral', { password: `${'🔑a'.repeat(128)}🔑` }, invalid, 'Ensure this field has no more than 256 characters.'],
      // A flag is two code points: four flags are 8 characters.
      ['4 flag emoji (8 regional indicators)', { password: '🇫🇷🇩🇪🇯🇵🇧🇷' }, created],
      // 7 code points whose NFC form is 6: the length counts what was sent.
      ['7 characters with a combining accent', { password: 'e\u0301tudes' }, invalid, 'Ensure this field has at least 8 characters.'],
      ['a common password', { password: 'password123' }, invalid, 'This password is too common.'],
      ['a common password in upper case', { password: 'PASSWORD123' }, invalid, 'This password is too common.'],
      ['a common password in mixed case', { password: 'TrustNo1' }, invalid, 'This password is too common.'],
      ['another common password', { password: 'zaq12wsx' }, invalid, 'This password is too common.'],
      ['the username inside', { username: 'wallace42', password: 'my wallace42 secret' }, invalid, 'The password is too similar to the username.'],
      ['the username in upper case inside', { username: 'gromit42', password: 'xxGROMIT42yy' }, invalid, 'The password is too similar to the username.'],
      ['the username in fullwidth letters inside', { username: 'preston42', password: 'my ｐｒｅｓｔｏｎ４２ pass' }, invalid, 'The password is too similar to the username.'],
      ['the username with ß inside as SS', { username: 'straße42', password: 'xx-STRASSE42-yy' }, invalid, 'The password is too similar to the username.'],
      ['the password equal to the username', { username: 'shaunsheep', password: 'ShaunSheep' }, invalid, 'The password is too similar to the username.'],
      ['the email local part inside', { email: 'feathers@example.com', password: 'mcgraw-FEATHERS-1' }, invalid, 'The password is too similar to the email address.']
    ]
    for (const [name, overrides, expected, message] of cases) {
      const response = await register(app, newUser(overrides))
      assertAnswer(t, response, expected, name)
      if (message !== undefined) t.same(response.json().errors, { password: [message] }, `${name}: the password is the field at fault`)
    }
    await assertStillAnswers(t, app)
  })

  t.test('login: the password as typed, up to NFC', async (t) => {
    const accounts = {
      nfc: newUser({ password: cafeNfc }),
      nfd: newUser({ password: cafeNfd }),
      spaces: newUser({ password: '  spaced out phrase  ' }),
      emoji: newUser({ password: '🔐🔑🗝️🚪🧱🪟🏠🔒' }),
      nul: newUser({ password: 'before\u0000after the nul' }),
      long: newUser({ password: `${'0123456789'.repeat(8)}-tail` })
    }
    for (const [name, body] of Object.entries(accounts)) {
      t.equal((await register(app, body)).statusCode, 201, `registers the ${name} account`)
    }
    const cases: Array<[string, { username: string }, string, Expected]> = [
      ['registered NFC, logs in NFC', accounts.nfc, cafeNfc, loggedIn],
      ['registered NFC, logs in NFD', accounts.nfc, cafeNfd, loggedIn],
      ['registered NFD, logs in NFC', accounts.nfd, cafeNfc, loggedIn],
      ['registered NFD, logs in NFD', accounts.nfd, cafeNfd, loggedIn],
      // Only NFC: a compatibility form is another password.
      ['in fullwidth letters (NFKC is not applied)', accounts.nfc, 'Ｃａｆé ａｕ ｌａｉｔ, ｓéｓａｍｅ', badCredentials],
      ['in another case', accounts.nfc, cafeNfc.toUpperCase(), badCredentials],
      ['with its leading and trailing spaces', accounts.spaces, '  spaced out phrase  ', loggedIn],
      ['without its leading and trailing spaces', accounts.spaces, 'spaced out phrase', badCredentials],
      ['without its trailing spaces', accounts.spaces, '  spaced out phrase', badCredentials],
      ['with a tab for a space', accounts.spaces, '\t spaced out phrase  ', badCredentials],
      ['8 emoji', accounts.emoji, '🔐🔑🗝️🚪🧱🪟🏠🔒', loggedIn],
      ['8 emoji, one variation selector short', accounts.emoji, '🔐🔑🗝🚪🧱🪟🏠🔒', badCredentials],
      ['with its NUL', accounts.nul, 'before\u0000after the nul', loggedIn],
      ['cut at its NUL', accounts.nul, 'before', badCredentials],
      ['cut at 72 bytes (bcrypt\'s limit)', accounts.long, '0123456789'.repeat(8).slice(0, 72), badCredentials],
      ['in full, past 72 bytes', accounts.long, `${'0123456789'.repeat(8)}-tail`, loggedIn],
      ['empty', accounts.nfc, '', invalid],
      ['257 code points', accounts.nfc, 'x'.repeat(257), invalid]
    ]
    for (const [name, account, password, expected] of cases) {
      assertAnswer(t, await login(app, account.username, password), expected, name)
    }
    await assertStillAnswers(t, app)
  })

  t.test('a password reset: the new password under the registration\'s rules, and a refused one uses no token', async (t) => {
    const { body, user, tokens } = await registerAndLogin(app, newUser({ username: 'resetter42', email: 'reset.mailbox@example.com' }))
    const live = await issueMailToken(app, user.id, 'password_reset', body.email)
    const before = await mailTokenState(app, user.id)
    const byToken = { token: live.token }
    const byCode = { email: body.email, code: live.code }
    const seven = 'q7#Lm2$'
    const cases: Array<[string, object, string, string]> = [
      ['7 code points', byToken, seven, 'Ensure this field has at least 8 characters.'],
      ['7 emoji (14 UTF-16 units)', byCode, '🔐'.repeat(7), 'Ensure this field has at least 8 characters.'],
      ['7 characters with a combining accent', byToken, 'e\u0301tudes', 'Ensure this field has at least 8 characters.'],
      ['257 code points', byCode, `${`${seven}Z`.repeat(32)}!`, 'Ensure this field has no more than 256 characters.'],
      ['257 code points, half of them astral', byToken, `${'🔑a'.repeat(128)}🔑`, 'Ensure this field has no more than 256 characters.'],
      ['a common password', byToken, 'password123', 'This password is too common.'],
      ['a common password in upper case', byCode, 'PASSWORD123', 'This password is too common.'],
      ['the username inside', byToken, 'my resetter42 secret', 'The password is too similar to the username.'],
      ['the username in fullwidth letters inside', byCode, 'my ｒｅｓｅｔｔｅｒ４２ pass', 'The password is too similar to the username.'],
      ['the email local part inside', byToken, 'xx-RESET.MAILBOX-yy', 'The password is too similar to the email address.']
    ]
    for (const [name, proof, newPassword, message] of cases) {
      const response = await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { ...proof, new_password: newPassword } })
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { new_password: [message] }, `${name}: the new password is the field at fault`)
    }
    t.same(await mailTokenState(app, user.id), before, 'the token is still live, and the right code counted no attempt')
    assertAnswer(t, await login(app, body.username, body.password), loggedIn, 'the password is unchanged')
    await assertStillAnswers(t, app, tokens.access)

    // Sent NFD, the new password is hashed NFC, as at registration.
    const done = await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { ...byCode, new_password: cafeNfd } })
    t.equal(done.statusCode, 204, 'a valid new password, by the code')
    assertAnswer(t, await login(app, body.username, cafeNfc), loggedIn, 'the new password, NFC')
    assertAnswer(t, await login(app, body.username, body.password), badCredentials, 'the old password')
    const again = await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { ...byToken, new_password: 'yet another passphrase' } })
    assertAnswer(t, again, invalid, 'the token of the code used')
    t.same(again.json().errors, { token: ['Invalid or expired token.'] })
  })

  t.test('an email change: the password as typed, up to NFC', async (t) => {
    const nfc = await registerAndLogin(app, newUser({ password: cafeNfc }))
    const spaces = await registerAndLogin(app, newUser({ password: '  spaced out phrase  ' }))
    const nul = await registerAndLogin(app, newUser({ password: 'before\u0000after the nul' }))
    const cases: Array<[string, typeof nfc, unknown, Expected, Record<string, string[]>?]> = [
      ['in another case', nfc, cafeNfc.toUpperCase(), invalid, { password: ['Your password was entered incorrectly.'] }],
      ['in fullwidth letters (NFKC is not applied)', nfc, 'Ｃａｆé ａｕ ｌａｉｔ, ｓéｓａｍｅ', invalid, { password: ['Your password was entered incorrectly.'] }],
      ['without its leading and trailing spaces', spaces, 'spaced out phrase', invalid, { password: ['Your password was entered incorrectly.'] }],
      ['cut at its NUL', nul, 'before', invalid, { password: ['Your password was entered incorrectly.'] }],
      ['with a NUL after it', nfc, `${cafeNfc}\u0000`, invalid, { password: ['Your password was entered incorrectly.'] }],
      ['empty', nfc, '', invalid, { password: ['Ensure this field has at least 1 characters.'] }],
      ['257 code points', nfc, 'x'.repeat(257), invalid, { password: ['Ensure this field has no more than 256 characters.'] }],
      ['10,000 characters', nfc, 'x'.repeat(10_000), invalid, { password: ['Ensure this field has no more than 256 characters.'] }],
      ['an array of the password', nfc, [cafeNfc], invalid, { password: ['Must be of type string.'] }],
      ['registered NFC, sent NFD', nfc, cafeNfd, accepted],
      ['with its leading and trailing spaces', spaces, '  spaced out phrase  ', accepted],
      ['with its NUL', nul, 'before\u0000after the nul', accepted]
    ]
    for (const [name, account, password, expected, errors] of cases) {
      const before = await mailTokenState(app, account.user.id)
      const response = await app.inject({ method: 'POST', url: '/auth/email/change/', headers: bearer(account.tokens.access), payload: { password, new_email: `new-${account.body.email}` } })
      assertAnswer(t, response, expected, name)
      if (errors !== undefined) {
        t.same(response.json().errors, errors, `${name}: the password is the field at fault`)
        t.same(await mailTokenState(app, account.user.id), before, `${name}: no email change token issued`)
      }
    }
    await assertStillAnswers(t, app, nfc.tokens.access)
  })
})
