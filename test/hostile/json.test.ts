import t from 'tap'
import { bearer, build, newUser, registerAndLogin } from '../helper.js'
import { assertAnswer, assertStillAnswers, issueMailToken, mailTokenState, postRaw, proofRoutes, type Expected } from './cases.js'

const invalid: Expected = { status: 400, code: 'invalid_request' }
const tooLarge: Expected = { status: 413, code: 'payload_too_large' }
const unsupported: Expected = { status: 415, code: 'unsupported_media_type' }
const badCredentials: Expected = { status: 401, code: 'invalid_credentials' }
const tokenInvalid: Expected = { status: 401, code: 'token_invalid' }

const json = { 'content-type': 'application/json' }
const routes = ['/auth/register/', '/auth/login/', '/auth/refresh/', '/auth/password/reset/', ...proofRoutes, '/auth/email/change/'] as const
const bodyLimit = 64 * 1024

/** A JSON text of exactly `bytes` bytes: the body given, padded with an unknown field. */
function padded (body: object, bytes: number): string {
  const head = JSON.stringify({ ...body, pad: '' })
  return `${head.slice(0, -2)}${'p'.repeat(bytes - Buffer.byteLength(head))}"}`
}

t.test('hostile JSON bodies', async (t) => {
  const app = await build(t)
  const { body: account, user: registered, tokens } = await registerAndLogin(app)
  const valid = {
    '/auth/register/': () => newUser(),
    '/auth/login/': () => ({ username: account.username, password: 'wrong password' }),
    '/auth/refresh/': () => ({ refresh: 'not.a.token' }),
    '/auth/password/reset/': () => ({ email: 'nobody@example.com' }),
    '/auth/password/reset/confirm/': () => ({ token: 'not-a-live-token', new_password: 'a brand new passphrase' }),
    '/auth/email/verify/': () => ({ token: 'not-a-live-token' }),
    '/auth/email/change/': () => ({ password: 'wrong password', new_email: 'somewhere-new@example.com' }),
    '/auth/email/change/confirm/': () => ({ token: 'not-a-live-token' })
  }
  /** The headers a route needs besides its body's: the email change is the account's own, behind its access token. */
  const auth = (url: string): Record<string, string> => url === '/auth/email/change/' ? bearer(tokens.access) : {}
  // A live token of every kind, mailed to the account: no hostile body below may use one, or count a code against it.
  const live = {
    reset: await issueMailToken(app, registered.id, 'password_reset', account.email),
    verify: await issueMailToken(app, registered.id, 'email_verify', account.email),
    change: await issueMailToken(app, registered.id, 'email_change', `new-${account.email}`)
  }
  const untouched = await mailTokenState(app, registered.id)

  t.test('the same malformed body on every route', async (t) => {
    // [case, raw body (undefined: none), headers, answer]
    const cases: Array<[string, string | Buffer | undefined, Record<string, string>, Expected]> = [
      ['invalid JSON', '{"username": ', json, invalid],
      ['an unclosed string', '{"username": "abc', json, invalid],
      ['a trailing comma', '{"username": "a",}', json, invalid],
      ['single quotes', "{'username': 'a'}", json, invalid],
      ['a comment', '{"username": /* hi */ "a"}', json, invalid],
      ['NaN', '{"username": NaN}', json, invalid],
      ['two JSON documents', '{"a": 1}{"b": 2}', json, invalid],
      ['trailing garbage', '{"a": 1} x', json, invalid],
      ['gzip bytes sent as JSON', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe]), { ...json, 'content-encoding': 'gzip' }, invalid],
      ['an empty body with content-type application/json', '', json, invalid],
      ['no body at all', undefined, {}, invalid],
      ['the top level null', 'null', json, invalid],
      ['the top level a string', '"username"', json, invalid],
      ['the top level a number', '42', json, invalid],
      ['the top level true', 'true', json, invalid],
      ['the top level an array', '[]', json, invalid],
      ['an empty object', '{}', json, invalid],
      ['10,000 levels of [ unclosed', '['.repeat(10_000), json, invalid],
      ['10,000 levels of [ closed', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, json, invalid],
      ['32,000 levels of [, just under 64 KiB', `${'['.repeat(32_000)}${']'.repeat(32_000)}`, json, invalid],
      ['10,000 levels of objects', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, json, invalid],
      ['a __proto__ key', '{"__proto__": {"admin": true}}', json, invalid],
      ['a __proto__ key set to null', '{"__proto__": null}', json, invalid],
      ['a __proto__ key spelt with \\u escapes', '{"\\u005f\\u005fproto\\u005f\\u005f": {"admin": true}}', json, invalid],
      ['a __proto__ key nested in a field', '{"username": {"__proto__": {"admin": true}}}', json, invalid],
      ['a constructor.prototype key', '{"constructor": {"prototype": {"admin": true}}}', json, invalid],
      ['a constructor key holding a string', '{"constructor": "x", "username": "a", "password": "b", "refresh": "c"}', json, invalid],
      ['a constructor key holding an object', '{"constructor": {"a": 1}, "username": "a", "password": "b", "refresh": "c"}', json, invalid],
      ['a constructor key spelt with \\u escapes', '{"\\u0063onstructor": "x", "username": "a", "password": "b", "refresh": "c"}', json, invalid],
      ['a prototype key', '{"prototype": {"admin": true}, "username": "a", "password": "b", "refresh": "c"}', json, invalid],
      ['text/plain', '{"username": "a"}', { 'content-type': 'text/plain' }, unsupported],
      ['text/json', '{"username": "a"}', { 'content-type': 'text/json' }, unsupported],
      ['application/x-www-form-urlencoded', 'username=a&password=b&refresh=c', { 'content-type': 'application/x-www-form-urlencoded' }, unsupported],
      ['multipart/form-data', '--b\r\nContent-Disposition: form-data; name="username"\r\n\r\na\r\n--b--\r\n', { 'content-type': 'multipart/form-data; boundary=b' }, unsupported],
      ['application/octet-stream', '{"username": "a"}', { 'content-type': 'application/octet-stream' }, unsupported],
      ['application/vnd.api+json', '{"username": "a"}', { 'content-type': 'application/vnd.api+json' }, unsupported],
      ['application/jsonx', '{"username": "a"}', { 'content-type': 'application/jsonx' }, unsupported],
      ['an empty content-type', '{"username": "a"}', { 'content-type': '' }, unsupported],
      ['no content-type with a body', '{"username": "a"}', {}, unsupported],
      ['a body of 64 KiB + 1 byte', padded({}, bodyLimit + 1), json, tooLarge],
      ['a body of 1 MiB', padded({}, 1024 * 1024), json, tooLarge],
      ['a 1 MiB form body', `username=${'a'.repeat(1024 * 1024)}`, { 'content-type': 'application/x-www-form-urlencoded' }, unsupported]
    ]
    for (const url of routes) {
      for (const [name, payload, headers, expected] of cases) {
        assertAnswer(t, await postRaw(app, url, payload, { ...headers, ...auth(url) }), expected, `${url} ${name}`)
      }
    }
    t.same(await mailTokenState(app, registered.id), untouched, 'no mail token issued, used or counted against')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('a body on the route that takes none (a verification resend): parsed as on every route, then ignored', async (t) => {
    // An app of its own: what this route answers is checked against what it documents when the app closes, here.
    const app = await build(t)
    const { user: registered, tokens } = await registerAndLogin(app)
    const untouched = await mailTokenState(app, registered.id)
    const resend = '/auth/email/verify/resend/'
    const cases: Array<[string, string | Buffer | undefined, Record<string, string>, Expected]> = [
      ['invalid JSON', '{"email": ', json, invalid],
      ['a __proto__ key', '{"__proto__": {"admin": true}}', json, invalid],
      ['a __proto__ key spelt with \\u escapes', '{"\\u005f\\u005fproto\\u005f\\u005f": {"email": "attacker@example.com"}}', json, invalid],
      ['an empty body with content-type application/json', '', json, invalid],
      ['10,000 levels of [ unclosed', '['.repeat(10_000), json, invalid],
      ['text/plain', '{"email": "attacker@example.com"}', { 'content-type': 'text/plain' }, unsupported],
      ['application/x-www-form-urlencoded', 'email=attacker%40example.com', { 'content-type': 'application/x-www-form-urlencoded' }, unsupported],
      ['no content-type with a body', '{"email": "attacker@example.com"}', {}, unsupported],
      ['a body of 64 KiB + 1 byte', padded({}, bodyLimit + 1), json, tooLarge],
      ['a constructor.prototype key', '{"constructor": {"prototype": {"admin": true}}}', json, invalid],
      // Well-formed: the body is never read. The registration's mail was within the minute, so the resend waits.
      ['an address of the attacker\'s choosing', '{"email": "attacker@example.com"}', json, { status: 429, code: 'throttled' }],
      ['a constructor key holding a string', '{"constructor": "x", "email": "attacker@example.com"}', json, { status: 429, code: 'throttled' }],
      ['no body at all', undefined, {}, { status: 429, code: 'throttled' }]
    ]
    for (const [name, payload, headers, expected] of cases) {
      assertAnswer(t, await postRaw(app, resend, payload, { ...headers, ...bearer(tokens.access) }), expected, name)
    }
    // Without a token nothing is parsed: the 401 comes first, whatever the body.
    assertAnswer(t, await postRaw(app, resend, '{"email": ', json), { status: 401, code: 'not_authenticated' }, 'invalid JSON and no token')
    assertAnswer(t, await postRaw(app, resend, padded({}, bodyLimit + 1), json), { status: 401, code: 'not_authenticated' }, '64 KiB + 1 byte and no token')
    t.same(await mailTokenState(app, registered.id), untouched, 'no mail token issued, and none to the attacker\'s address')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('a wrong type where a string belongs: 400, never coerced', async (t) => {
    const wrongTypes: Array<[string, unknown]> = [
      ['a number', 12345678],
      ['a float', 1.5],
      ['a huge number', 1e308],
      ['an array of a string', ['a string of eight']],
      ['an empty array', []],
      ['an object', { value: 'a string of eight' }],
      ['null', null],
      ['true', true],
      ['false', false]
    ]
    // [route, field]: every string field of the bodies.
    const fields: Array<[keyof typeof valid, string]> = [
      ['/auth/register/', 'username'],
      ['/auth/register/', 'email'],
      ['/auth/register/', 'password'],
      ['/auth/login/', 'username'],
      ['/auth/login/', 'password'],
      ['/auth/refresh/', 'refresh'],
      ['/auth/password/reset/', 'email'],
      ['/auth/password/reset/confirm/', 'token'],
      ['/auth/password/reset/confirm/', 'email'],
      ['/auth/password/reset/confirm/', 'code'],
      ['/auth/password/reset/confirm/', 'new_password'],
      ['/auth/email/verify/', 'token'],
      ['/auth/email/verify/', 'email'],
      ['/auth/email/verify/', 'code'],
      ['/auth/email/change/', 'password'],
      ['/auth/email/change/', 'new_email'],
      ['/auth/email/change/confirm/', 'token'],
      ['/auth/email/change/confirm/', 'email'],
      ['/auth/email/change/confirm/', 'code']
    ]
    for (const [url, field] of fields) {
      for (const [name, value] of wrongTypes) {
        const response = await postRaw(app, url, JSON.stringify({ ...valid[url](), [field]: value }), { ...json, ...auth(url) })
        assertAnswer(t, response, invalid, `${url} ${field} as ${name}`)
        t.same(response.json().errors, { [field]: ['Must be of type string.'] }, `${url} ${field} as ${name}: the field at fault`)
      }
    }
    // The live code and token themselves, as a number or in an array: still not coerced, nor used.
    const typed: Array<[string, string, object]> = [
      ['the live code as a number', '/auth/password/reset/confirm/', { email: account.email, code: Number(live.reset.code), new_password: 'a brand new passphrase' }],
      ['the live code in an array', '/auth/email/verify/', { email: account.email, code: [live.verify.code] }],
      ['the live token in an array', '/auth/email/change/confirm/', { token: [live.change.token] }],
      ['the account\'s address in an array', '/auth/email/verify/', { email: [account.email], code: live.verify.code }]
    ]
    for (const [name, url, body] of typed) assertAnswer(t, await postRaw(app, url, JSON.stringify(body)), invalid, name)
    t.same(await mailTokenState(app, registered.id), untouched, 'no mail token issued, used or counted against')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('duplicate keys: the last one wins, on every route alike', async (t) => {
    const other = await registerAndLogin(app)
    const user = newUser()
    // Raw bodies, since an object literal cannot hold a key twice.
    const cases: Array<[string, string, string, Expected, ((body: Record<string, unknown>) => void)?]> = [
      ['register: a short username, then a valid one', '/auth/register/',
        `{"username": "ab", "username": ${JSON.stringify(user.username)}, "email": ${JSON.stringify(user.email)}, "password": ${JSON.stringify(user.password)}}`,
        { status: 201 }, (body) => t.equal(body.username, user.username, 'the last username was stored')],
      ['register: a valid username, then a short one', '/auth/register/',
        '{"username": "fine-name", "username": "ab", "email": "dup@example.com", "password": "correct horse battery"}',
        invalid, (body) => t.same(body.errors, { username: ['Ensure this field has at least 3 characters.'] })],
      ['register: a number, then a string', '/auth/register/',
        '{"username": 42, "username": "numberless", "email": "numberless@example.com", "password": "correct horse battery"}',
        { status: 201 }, (body) => t.equal(body.username, 'numberless')],
      ['register: a string, then a number', '/auth/register/',
        '{"username": "stringful", "username": 42, "email": "stringful@example.com", "password": "correct horse battery"}',
        invalid, (body) => t.same(body.errors, { username: ['Must be of type string.'] })],
      ['login: an unknown user, then the real one', '/auth/login/',
        `{"username": "nobody-here", "username": ${JSON.stringify(other.body.username)}, "password": ${JSON.stringify(other.body.password)}}`,
        { status: 200 }],
      ['login: the real user, then an unknown one', '/auth/login/',
        `{"username": ${JSON.stringify(other.body.username)}, "username": "nobody-here", "password": ${JSON.stringify(other.body.password)}}`,
        badCredentials],
      ['login: the right password, then a wrong one', '/auth/login/',
        `{"username": ${JSON.stringify(other.body.username)}, "password": ${JSON.stringify(other.body.password)}, "password": "wrong password"}`,
        badCredentials],
      ['refresh: the real token, then garbage', '/auth/refresh/',
        `{"refresh": ${JSON.stringify(other.tokens.refresh)}, "refresh": "garbage"}`,
        tokenInvalid],
      ['refresh: garbage, then the real token', '/auth/refresh/',
        `{"refresh": "garbage", "refresh": ${JSON.stringify(other.tokens.refresh)}}`,
        { status: 200 }],
      ['email verify: the live token, then garbage', '/auth/email/verify/',
        `{"token": ${JSON.stringify(live.verify.token)}, "token": "garbage"}`,
        invalid, (body) => t.same(body.errors, { token: ['Invalid or expired token.'] })],
      ['password reset: the live code, then one in Arabic-Indic digits', '/auth/password/reset/confirm/',
        `{"email": ${JSON.stringify(account.email)}, "code": ${JSON.stringify(live.reset.code)}, "code": "٠١٢٣٤٥", "new_password": "a brand new passphrase"}`,
        invalid, (body) => t.same(body.errors, { code: ['Must match pattern "^[0-9]{6}$".'] })],
      ['email change: the live code, then a number', '/auth/email/change/confirm/',
        `{"email": ${JSON.stringify(`new-${account.email}`)}, "code": ${JSON.stringify(live.change.code)}, "code": 123456}`,
        invalid, (body) => t.same(body.errors, { code: ['Must be of type string.'] })],
      ['email change: the live token, then an empty one', '/auth/email/change/confirm/',
        `{"token": ${JSON.stringify(live.change.token)}, "token": ""}`,
        invalid, (body) => t.same(body.errors, { token: ['Ensure this field has at least 1 characters.'] })]
    ]
    for (const [name, url, payload, expected, check] of cases) {
      const response = await postRaw(app, url, payload)
      assertAnswer(t, response, expected, name)
      check?.(response.json())
    }
    t.same(await mailTokenState(app, registered.id), untouched, 'no mail token used or counted against')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('odd but well-formed bodies', async (t) => {
    const cases: Array<[string, string, string | Buffer, Record<string, string>, Expected]> = [
      ['exactly 64 KiB, an unknown field padding it', '/auth/refresh/', padded({ refresh: 'not.a.token' }, bodyLimit), json, tokenInvalid],
      ['64 KiB + 1 byte', '/auth/refresh/', padded({ refresh: 'not.a.token' }, bodyLimit + 1), json, tooLarge],
      ['a deep array in an unknown field (dropped)', '/auth/login/', `{"username": "nobody-here", "password": "x", "extra": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`, json, badCredentials],
      ['a deep array where a string belongs', '/auth/login/', `{"username": ${'['.repeat(10_000)}${']'.repeat(10_000)}, "password": "x"}`, json, invalid],
      ['a byte order mark before the JSON', '/auth/login/', '\uFEFF{"username": "nobody-here", "password": "x"}', json, badCredentials],
      ['invalid UTF-8 inside a string', '/auth/login/', Buffer.concat([Buffer.from('{"username": "ab'), Buffer.from([0xff, 0xfe]), Buffer.from('c", "password": "x"}')]), json, badCredentials],
      ['a lone surrogate escape', '/auth/login/', '{"username": "\\ud800", "password": "x"}', json, badCredentials],
      ['a NUL escape in the username', '/auth/login/', '{"username": "nobody\\u0000here", "password": "x"}', json, badCredentials],
      ['a NUL escape in an email', '/auth/login/', '{"username": "nobody\\u0000@example.com", "password": "x"}', json, badCredentials],
      ['a NUL escape in a refresh token', '/auth/refresh/', '{"refresh": "a\\u0000b.c.d"}', json, tokenInvalid],
      ['a NUL escape in a registration', '/auth/register/', '{"username": "nul\\u0000name", "email": "nul@example.com", "password": "correct horse battery"}', json, invalid],
      ['JSON with a charset', '/auth/login/', '{"username": "nobody-here", "password": "x"}', { 'content-type': 'application/json; charset=utf-8' }, badCredentials],
      ['JSON in upper case', '/auth/login/', '{"username": "nobody-here", "password": "x"}', { 'content-type': 'APPLICATION/JSON' }, badCredentials],
      // Mailed proofs: the live token or code of the account, spoilt by a byte; each a 400 that uses nothing.
      ['a NUL escape in a mail token', '/auth/email/verify/', '{"token": "not\\u0000a-token"}', json, invalid],
      ['the live token with a NUL escape after it', '/auth/email/verify/', JSON.stringify({ token: `${live.verify.token}\u0000` }), json, invalid],
      ['the live token with a NUL escape inside it', '/auth/password/reset/confirm/', JSON.stringify({ token: `${live.reset.token.slice(0, 20)}\u0000${live.reset.token.slice(20)}`, new_password: 'a brand new passphrase' }), json, invalid],
      ['the live token with %00 after it', '/auth/email/change/confirm/', JSON.stringify({ token: `${live.change.token}%00` }), json, invalid],
      ['the live token percent-encoded', '/auth/email/change/confirm/', JSON.stringify({ token: encodeURIComponent(`${live.change.token}=`) }), json, invalid],
      ['the live token with a trailing newline', '/auth/email/verify/', JSON.stringify({ token: `${live.verify.token}\n` }), json, invalid],
      ['the live token in upper case', '/auth/email/verify/', JSON.stringify({ token: live.verify.token.toUpperCase() }), json, invalid],
      ['invalid UTF-8 inside a mail token', '/auth/email/change/confirm/', Buffer.concat([Buffer.from('{"token": "ab'), Buffer.from([0xff, 0xfe]), Buffer.from('c"}')]), json, invalid],
      ['a lone surrogate escape in a mail token', '/auth/email/verify/', '{"token": "\\ud800"}', json, invalid],
      ['a byte order mark before a proof', '/auth/email/verify/', '\uFEFF{"token": "not-a-live-token"}', json, invalid],
      ['exactly 64 KiB of proof, an unknown field padding it', '/auth/email/verify/', padded({ token: 'not-a-live-token' }, bodyLimit), json, invalid],
      ['the account address with a NUL escape, and the live code', '/auth/email/verify/', JSON.stringify({ email: `${account.email}\u0000`, code: live.verify.code }), json, invalid],
      ['the account address with a trailing space, and the live code', '/auth/password/reset/confirm/', JSON.stringify({ email: `${account.email} `, code: live.reset.code, new_password: 'a brand new passphrase' }), json, invalid],
      ['a 10,000-character address, and the live code', '/auth/email/verify/', JSON.stringify({ email: `${'a'.repeat(10_000)}@example.com`, code: live.verify.code }), json, invalid],
      ['a NUL escape in a code', '/auth/password/reset/confirm/', JSON.stringify({ email: account.email, code: `${live.reset.code.slice(0, 5)}\u0000`, new_password: 'a brand new passphrase' }), json, invalid],
      ['the live code with a NUL escape after it', '/auth/email/verify/', JSON.stringify({ email: account.email, code: `${live.verify.code}\u0000` }), json, invalid],
      ['the live code in Arabic-Indic digits', '/auth/email/verify/', JSON.stringify({ email: account.email, code: live.verify.code.replace(/[0-9]/g, (digit) => String.fromCodePoint(0x660 + Number(digit))) }), json, invalid],
      ['the live code in fullwidth digits', '/auth/email/change/confirm/', JSON.stringify({ email: `new-${account.email}`, code: live.change.code.replace(/[0-9]/g, (digit) => String.fromCodePoint(0xFF10 + Number(digit))) }), json, invalid],
      ['the live code with a trailing newline', '/auth/email/verify/', JSON.stringify({ email: account.email, code: `${live.verify.code}\n` }), json, invalid],
      ['the live code with a leading space', '/auth/email/verify/', JSON.stringify({ email: account.email, code: ` ${live.verify.code}` }), json, invalid],
      ['the live code with its digits doubled', '/auth/email/verify/', JSON.stringify({ email: account.email, code: live.verify.code.repeat(2) }), json, invalid],
      ['a code as a 10,000-digit string', '/auth/email/verify/', JSON.stringify({ email: account.email, code: '1'.repeat(10_000) }), json, invalid],
      // A reset answers alike for every address; these name none, so no token is issued and the live one stays live.
      ['a reset for the account address with a NUL escape', '/auth/password/reset/', JSON.stringify({ email: `${account.email}\u0000` }), json, { status: 202 }],
      ['a reset for the account address with a trailing space', '/auth/password/reset/', JSON.stringify({ email: `${account.email} ` }), json, { status: 202 }],
      ['a reset for the account address with a lone surrogate', '/auth/password/reset/', JSON.stringify({ email: `${account.email}\ud800` }), json, { status: 202 }],
      ['a reset for a 10,000-character address', '/auth/password/reset/', JSON.stringify({ email: `${'a'.repeat(10_000)}@example.com` }), json, invalid]
    ]
    for (const [name, url, payload, headers, expected] of cases) {
      assertAnswer(t, await postRaw(app, url, payload, headers), expected, name)
    }
    t.same(await mailTokenState(app, registered.id), untouched, 'no mail token issued, used or counted against')
    await assertStillAnswers(t, app, tokens.access)
  })
})
