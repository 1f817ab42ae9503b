import t from 'tap'
import { bearer, build, newUser, registerAndLogin } from '../helper.js'
import { assertAnswer, assertStillAnswers, issueMailToken, login, mailTokenState, register, type Expected } from './cases.js'

// The rule (src/identity.ts): a username is letters (with up to four combining marks), decimal
// digits, '.', '_' and '-', checked on its NFKC form; two usernames are one when NFKC, upper case,
// lower case, NFKC agree. Emails are ASCII addresses, unique on their lower-cased form.

const created: Expected = { status: 201 }
const usernameTaken: Expected = { status: 409, code: 'username_taken' }
const emailTaken: Expected = { status: 409, code: 'email_taken' }
const invalid: Expected = { status: 400, code: 'invalid_request' }
const loggedIn: Expected = { status: 200 }
const badCredentials: Expected = { status: 401, code: 'invalid_credentials' }

const password = 'correct horse battery'
const emailMessage = 'Enter a valid email address.'
const usernameMessage = 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'

/** Addresses registration refuses, each a look-alike or a spoilt form of person@example.com. */
const refusedEmails: Array<[string, string]> = [
  ['a fullwidth @', 'person＠example.com'],
  ['a small commercial at U+FE6B', 'person﹫example.com'],
  ['fullwidth letters', 'ｐｅｒｓｏｎ@example.com'],
  ['a KELVIN SIGN in the local part', '\u212Aate@example.com'],
  ['an accented local part', 'pérson@example.com'],
  ['an IDN domain', 'person@exämple.com'],
  ['a Cyrillic а in the domain', 'person@exаmple.com'],
  ['a zero-width space', 'per\u200Bson@example.com'],
  ['a trailing LF', 'person@example.com\n'],
  ['a CRLF and a header (injection)', 'person@example.com\r\nBcc: victim@example.com'],
  ['a NUL', 'person\u0000@example.com'],
  ['a leading space', ' person@example.com'],
  ['two @', 'person@@example.com'],
  ['a display name', 'Person <person@example.com>'],
  ['a quoted local part', '"person"@example.com'],
  ['no dot in the domain', 'person@localhost'],
  ['an IP literal domain', 'person@[127.0.0.1]']
]

t.test('hostile usernames and emails', async (t) => {
  const app = await build(t)
  /** Registers a username once; later rows may reuse it as their first name. */
  const registered = new Set<string>()
  async function ensureRegistered (username: string) {
    if (registered.has(username)) return
    registered.add(username)
    const response = await register(app, newUser({ username, password }))
    t.equal(response.statusCode, 201, `registers ${JSON.stringify(username)}`)
  }

  t.test('usernames that are one after NFKC and case folding', async (t) => {
    // [case, username registered first, username registered second, answer to the second]
    const cases: Array<[string, string, string, Expected]> = [
      ['lower case of a registered name', 'Admin', 'admin', usernameTaken],
      ['upper case of a registered name', 'Admin', 'ADMIN', usernameTaken],
      ['fullwidth letters', 'Admin', 'ａｄｍｉｎ', usernameTaken],
      ['fullwidth capitals', 'Admin', 'ＡＤＭＩＮ', usernameTaken],
      ['a circled letter (NFKC)', 'Admin', 'ⓐdmin', usernameTaken],
      ['a modifier capital (NFKC)', 'Admin', 'ᴬdmin', usernameTaken],
      ['ß, then SS', 'straße', 'STRASSE', usernameTaken],
      ['ß, then ss', 'straße', 'strasse', usernameTaken],
      ['ß, then fullwidth ss', 'straße', 'ｓｔｒａｓｓｅ', usernameTaken],
      ['SS, then ß', 'MASSE', 'maße', usernameTaken],
      ['ß, then capital ẞ U+1E9E', 'weiße', 'WEIẞE', usernameTaken],
      ['capital ẞ, then ss', 'GROẞ', 'gross', usernameTaken],
      ['dotless ı, then i (upper then lower maps ı to i)', 'ıvan', 'ivan', usernameTaken],
      ['dotless ı, then I', 'ıvan', 'IVAN', usernameTaken],
      // Case folding maps İ to i + U+0307, not to i: a name of its own.
      ['i, then dotted İ', 'ilker', 'İlker', created],
      ['KELVIN SIGN, then K', '\u212Aelvin', 'kelvin', usernameTaken],
      ['K, then KELVIN SIGN', 'Kappa', '\u212Aappa', usernameTaken],
      ['ANGSTROM SIGN, then Å', '\u212Bngström', 'Ångström', usernameTaken],
      ['the ligature ﬃ, then ffi', 'oﬃce', 'office', usernameTaken],
      ['Roman numeral Ⅻ, then XII', 'Ⅻclub', 'xiiclub', usernameTaken],
      ['final sigma, then capital sigma', 'οδος', 'ΟΔΟΣ', usernameTaken],
      ['final sigma, then sigma', 'οδος', 'οδοσ', usernameTaken],
      ['precomposed é, then e + combining acute', 'José', 'Jose\u0301', usernameTaken],
      ['titlecase digraph ǅ, then dž', 'ǅemal', 'džemal', usernameTaken]
    ]
    for (const [name, first, second, expected] of cases) {
      await ensureRegistered(first)
      assertAnswer(t, await register(app, newUser({ username: second, password })), expected, name)
      if (expected.status === 201) registered.add(second)
    }
    await assertStillAnswers(t, app)
  })

  t.test('usernames that look like a registered one (UTS #39 confusables, of the name in upper case)', async (t) => {
    const cases: Array<[string, string, string, Expected]> = [
      ['Lisu letters drawn as ADMIN', 'Admin', 'ꓮꓓꓟꓲꓠ', usernameTaken],
      ['Greek capitals drawn as ABE', 'ABE', 'ΑΒΕ', usernameTaken],
      ['Latin ABE after Greek ΑΒΕ', 'ΖΗΤΑ', 'ZHTA', usernameTaken],
      ['a zero for an O', 'bobby', 'b0bby', usernameTaken],
      ['a one for an I', 'mike', 'm1ke', usernameTaken],
      ['Cyrillic drawn as apple', 'apple', 'аррӏе', usernameTaken],
      ['rn drawn as m', 'modern', 'rnodern', usernameTaken],
      ['a capital I drawn as l', 'paypal', 'paypaI', usernameTaken],
      ['a one drawn as l', 'google', 'goog1e', usernameTaken],
      ['mail is not mall', 'mail', 'mall', created],
      ['ilker is not llker', 'ilker', 'llker', created]
    ]
    for (const [name, first, second, expected] of cases) {
      await ensureRegistered(first)
      assertAnswer(t, await register(app, newUser({ username: second, password })), expected, name)
      if (expected.status === 201) registered.add(second)
    }
    await assertStillAnswers(t, app)
  })

  t.test('usernames refused with a field error', async (t) => {
    const cases: Array<[string, string]> = [
      ['a zero-width space U+200B', 'ann\u200Bsmith'],
      ['a zero-width non-joiner U+200C', 'ann\u200Csmith'],
      ['a zero-width joiner U+200D', 'ann\u200Dsmith'],
      ['a byte order mark U+FEFF', '\uFEFFannsmith'],
      ['a word joiner U+2060', 'ann\u2060smith'],
      ['a soft hyphen U+00AD', 'ann\u00ADsmith'],
      ['a right-to-left override U+202E', 'ann\u202Ehtims'],
      ['a left-to-right mark U+200E', 'ann\u200Esmith'],
      ['an Arabic letter mark U+061C', 'ann\u061Csmith'],
      ['a tag character U+E0041', 'ann\u{E0041}smith'],
      ['a CR', 'ann\rsmith'],
      ['an LF', 'ann\nsmith'],
      ['a CRLF', 'annsmith\r\n'],
      ['a NUL', 'ann\u0000smith'],
      ['a tab', 'ann\tsmith'],
      ['DEL', 'ann\u007Fsmith'],
      ['NEL U+0085', 'ann\u0085smith'],
      ['a line separator U+2028', 'ann\u2028smith'],
      ['a no-break space', 'ann\u00A0smith'],
      ['an ideographic space', 'ann\u3000smith'],
      ['a braille blank U+2800', 'ann\u2800smith'],
      ['a leading space', ' annsmith'],
      ['an @', 'ann@smith'],
      ['a slash', 'ann/smith'],
      ['a quote (SQL bait)', "ann' OR 1=1 --"],
      ['angle brackets', '<script>'],
      ['an emoji', 'ann🙂smith'],
      ['five combining marks on one letter', 'zalgo' + '\u0353'.repeat(5)],
      ['a lone surrogate', 'ann\uD800smith'],
      // Default-ignorable code points that are letters or marks, so the letter rule alone lets them in.
      ['a Hangul filler U+3164', 'ann\u3164smith'],
      ['a Hangul choseong filler U+115F', 'ann\u115Fsmith'],
      ['a Hangul jungseong filler U+1160', 'ann\u1160smith'],
      ['a halfwidth Hangul filler U+FFA0', 'ann\uFFA0smith'],
      ['variation selector-16 U+FE0F', 'ann\uFE0Fsmith'],
      ['a combining grapheme joiner U+034F', 'ann\u034Fsmith'],
      ['a Khmer inherent vowel U+17B4', 'ann\u17B4smith'],
      ['a small capital D (aᴅmin)', 'a\u1D05min'],
      ['a small capital I', 'adm\u026An'],
      ['a modifier letter apostrophe', 'ad\u02BCmin'],
      ['a modifier letter small capital', 'ad\u1D2Fmin']
    ]
    for (const [name, username] of cases) {
      const response = await register(app, newUser({ username, password }))
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { username: [usernameMessage] }, `${name}: the username is the field at fault`)
    }
    await assertStillAnswers(t, app)
  })

  t.test('usernames of mixed scripts: homoglyphs refused, real writing systems kept', async (t) => {
    const scriptMessage = 'Enter a valid username. Its letters must all be of one script.'
    const cases: Array<[string, string, Expected]> = [
      ['a Cyrillic а in a Latin name', 'p\u0430ypal', invalid],
      ['a Greek ο in a Latin name', 'g\u03BFogle', invalid],
      ['a Latin o in a Cyrillic name', 'м\u006Fсква', invalid],
      ['Arabic-Indic digits in a Latin name', 'abc\u0661\u0662', invalid],
      ['Latin and Hebrew', 'abcשלום', invalid],
      ['Japanese: Han, Hiragana and Katakana', '東京タワーとうきょう', created],
      ['Japanese with Latin', 'tokyo東京', created],
      ['Korean: Hangul with Latin', '서울seoul', created],
      ['Arabic with its own digits', 'سلام١٢', created],
      ['Latin with ASCII digits, dots and hyphens', 'ann.smith-42', created],
      ['Runic, a script the rule does not name, alone', 'ᚠᚢᚦᚨᚱ', created],
      ['Latin with Runic', 'abcᚠᚢᚦ', invalid],
      ['Runic with Ogham: two scripts, both real', 'ᚠᚢᚦᚁᚂᚃ', invalid],
      ['Ogham alone', 'ᚁᚂᚃᚄ', created],
      ['Lisu alone', 'ꓡꓲꓢꓴ', created],
      ['Japanese with its prolonged sound mark, a modifier letter', 'ラーメン', created],
      ['Thai with its repetition mark, a modifier letter', 'เด็กๆ', created]
    ]
    for (const [name, username, expected] of cases) {
      const response = await register(app, newUser({ username, password }))
      assertAnswer(t, response, expected, name)
      if (expected.status === 400) t.same(response.json().errors, { username: [scriptMessage] }, `${name}: the username is the field at fault`)
    }
    await assertStillAnswers(t, app)
  })

  t.test('emails', async (t) => {
    // [case, email registered first, email registered second, answer to the second]
    const cases: Array<[string, string, string, Expected]> = [
      ['a capitalised address, then lower case', 'Person@Example.com', 'person@example.com', emailTaken],
      ['a capitalised address, then upper case', 'Person@Example.com', 'PERSON@EXAMPLE.COM', emailTaken],
      ['a lower-case address, then a capitalised local part', 'someone@example.org', 'SomeOne@example.org', emailTaken],
      ['a different local part', 'Person@Example.com', 'person2@example.com', created]
    ]
    const registeredEmails = new Set<string>()
    for (const [name, first, second, expected] of cases) {
      if (!registeredEmails.has(first)) {
        registeredEmails.add(first)
        t.equal((await register(app, newUser({ email: first, password }))).statusCode, 201, `registers ${first}`)
      }
      assertAnswer(t, await register(app, newUser({ email: second, password })), expected, name)
    }

    for (const [name, email] of refusedEmails) {
      const response = await register(app, newUser({ email, password }))
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { email: [emailMessage] }, `${name}: the email is the field at fault`)
    }
    await assertStillAnswers(t, app)
  })

  t.test('addresses at an email change: refused as at registration, and nothing mailed', async (t) => {
    const { user: registered, tokens } = await registerAndLogin(app, newUser({ email: 'Kate.Owner@Example.com', password }))
    const other = newUser({ email: 'someone.else@example.com', password })
    t.equal((await register(app, other)).statusCode, 201)
    const change = (newEmail: unknown) => app.inject({ method: 'POST', url: '/auth/email/change/', headers: bearer(tokens.access), payload: { password, new_email: newEmail } })
    const before = await mailTokenState(app, registered.id)

    for (const [name, email] of refusedEmails) {
      const response = await change(email)
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { new_email: [emailMessage] }, `${name}: the new email is the field at fault`)
    }
    const cases: Array<[string, string, Expected, Record<string, string[]>?]> = [
      ['the own address in upper case', 'KATE.OWNER@EXAMPLE.COM', invalid, { new_email: ['This is already your email address.'] }],
      ['the own address with a KELVIN SIGN', '\u212Aate.Owner@Example.com', invalid, { new_email: [emailMessage] }],
      ['the own address with a trailing NUL', 'Kate.Owner@Example.com\u0000', invalid, { new_email: [emailMessage] }],
      ['the own address with a CRLF and a Bcc', 'Kate.Owner@Example.com\r\nBcc: victim@example.com', invalid, { new_email: [emailMessage] }],
      ['two addresses, comma-separated', 'kate.new@example.com,victim@example.com', invalid, { new_email: [emailMessage] }],
      ['two addresses, semicolon-separated', 'kate.new@example.com;victim@example.com', invalid, { new_email: [emailMessage] }],
      ['an address of 255 characters', `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`, invalid, { new_email: ['Ensure this field has no more than 254 characters.'] }],
      ['an address of 10,000 characters', `${'a'.repeat(10_000)}@example.com`, invalid, { new_email: ['Ensure this field has no more than 254 characters.'] }],
      // Another account's address answers as a free one does, and mails nothing: the answer must not tell which addresses exist.
      ['another account\'s address in upper case', other.email.toUpperCase(), { status: 202 }]
    ]
    for (const [name, email, expected, errors] of cases) {
      const response = await change(email)
      assertAnswer(t, response, expected, name)
      if (errors !== undefined) t.same(response.json().errors, errors, `${name}: the field at fault`)
    }
    t.same(await mailTokenState(app, registered.id), before, 'no email change token issued')
    const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })
    t.equal(me.json().email, registered.email, 'the address is unchanged')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('addresses at a password reset: the same answer for every one, a mail only for the account\'s own', async (t) => {
    const { user: registered } = await registerAndLogin(app, newUser({ email: 'Reset.Kate@Example.com', password }))
    const reset = (email: string) => app.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email } })
    const accepted = { detail: 'If an account has this address, a password reset mail is on its way.' }
    const resets = async () => (await mailTokenState(app, registered.id)).filter((row) => row.kind === 'password_reset')
    const lookalikes: Array<[string, string]> = [
      ['a fullwidth @', 'Reset.Kate＠Example.com'],
      ['a small commercial at U+FE6B', 'Reset.Kate﹫Example.com'],
      ['fullwidth letters', 'Ｒｅｓｅｔ.Owner@Example.com'],
      ['a Cyrillic а in the domain', 'Reset.Kate@Exаmple.com'],
      ['a zero-width space', 'Reset\u200B.Kate@Example.com'],
      ['a soft hyphen', 'Reset.Ka\u00ADte@Example.com'],
      ['a trailing LF', 'Reset.Kate@Example.com\n'],
      ['a CRLF and a Bcc', 'Reset.Kate@Example.com\r\nBcc: victim@example.com'],
      ['a NUL', 'Reset.Kate@Example.com\u0000'],
      ['a NUL inside', 'Reset.Kate\u0000@Example.com'],
      ['a lone surrogate', 'Reset.Kate@Example.com\uD800'],
      ['a leading space', ' Reset.Kate@Example.com'],
      ['a trailing space', 'Reset.Kate@Example.com '],
      ['a trailing dot on the domain', 'Reset.Kate@Example.com.'],
      ['a display name', 'Reset <Reset.Kate@Example.com>'],
      ['a quoted local part', '"Reset.Kate"@Example.com'],
      ['a percent-encoded @', 'Reset.Kate%40Example.com'],
      ['a SQL LIKE wildcard for the local part', '%@example.com'],
      ['a SQL LIKE wildcard for one character', 'reset.kat_@example.com'],
      ['SQL in the address', "Reset.Kate@Example.com' OR '1'='1"],
      ['two addresses, comma-separated', 'Reset.Kate@Example.com,attacker@example.com']
    ]
    for (const [name, email] of lookalikes) {
      const response = await reset(email)
      assertAnswer(t, response, { status: 202 }, name)
      t.same(response.json(), accepted, `${name}: the one answer`)
    }
    t.same(await resets(), [], 'no reset token issued for a look-alike')
    assertAnswer(t, await reset(`${'a'.repeat(10_000)}@example.com`), invalid, 'an address of 10,000 characters')
    // The address is one in any case; the key is toLowerCase(), which maps a KELVIN SIGN to k. Either way the
    // mail goes to the address the account has, not to the one sent.
    const sameAddress: Array<[string, string]> = [
      ['the address in upper case', 'RESET.KATE@EXAMPLE.COM'],
      ['a KELVIN SIGN for the k', 'Reset.Kate@Example.com'.replace('K', '\u212A')]
    ]
    for (const [name, email] of sameAddress) {
      t.same((await reset(email)).json(), accepted, name)
      t.equal((await resets()).filter((row) => row.consumedAt === null).length, 1, `${name}: one live reset token`)
    }
    t.same((await resets()).map((row) => row.email), ['Reset.Kate@example.com', 'Reset.Kate@example.com'], 'each to the address the account has')
    await assertStillAnswers(t, app)
  })

  t.test('addresses sent with a mailed code: only the one mailed finds it, and a look-alike counts no attempt', async (t) => {
    const { body: owner, user: registered, tokens } = await registerAndLogin(app, newUser({ email: 'Code.Owner@Example.com', password }))
    const live = await issueMailToken(app, registered.id, 'email_verify', owner.email)
    const before = await mailTokenState(app, registered.id)
    const verify = (email: string, code = live.code) => app.inject({ method: 'POST', url: '/auth/email/verify/', payload: { email, code } })
    const lookalikes: Array<[string, string]> = [
      ['a fullwidth @', 'Code.Owner＠Example.com'],
      ['a Cyrillic о in the local part', 'C\u043Ede.Owner@Example.com'],
      ['a zero-width space', 'Code.Owner\u200B@Example.com'],
      ['a trailing space', 'Code.Owner@Example.com '],
      ['a trailing LF', 'Code.Owner@Example.com\n'],
      ['a NUL', 'Code.Owner@Example.com\u0000'],
      ['a lone surrogate', 'Code.Owner@Example.com\uD800'],
      ['a SQL LIKE wildcard', '%@example.com'],
      ['SQL in the address', "x' OR '1'='1"],
      ['another account\'s address', 'someone.else@example.com']
    ]
    for (const [name, email] of lookalikes) {
      const response = await verify(email)
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { code: ['Invalid or expired code.'] }, `${name}: the code is the field at fault`)
    }
    t.same(await mailTokenState(app, registered.id), before, 'the token is live, and no attempt was counted against its code')
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).json().email_verified, false, 'the address is not verified')
    t.equal((await verify(owner.email.toUpperCase())).statusCode, 204, 'the address mailed, in upper case, with the code: verified')
    await assertStillAnswers(t, app, tokens.access)
  })

  t.test('logging in by any form of the name or the email', async (t) => {
    // Registered by the tables above: Admin, straße, ıvan, İlker, KELVIN SIGN + elvin, Person@example.com.
    await ensureRegistered('Admin')
    const cases: Array<[string, string, Expected]> = [
      ['the username as registered', 'Admin', loggedIn],
      ['the username in lower case', 'admin', loggedIn],
      ['the username in upper case', 'ADMIN', loggedIn],
      ['the username in fullwidth letters', 'ａｄｍｉｎ', loggedIn],
      ['straße as STRASSE', 'STRASSE', loggedIn],
      ['straße as fullwidth ｓｔｒａｓｓｅ', 'ｓｔｒａｓｓｅ', loggedIn],
      ['ıvan as IVAN', 'IVAN', loggedIn],
      ['İlker as ilker + combining dot', 'i\u0307lker', loggedIn],
      ['KELVIN SIGN name as plain kelvin', 'KELVIN', loggedIn],
      ['the username with a zero-width space', 'Ad\u200Bmin', badCredentials],
      ['the username with a trailing space', 'Admin ', badCredentials],
      ['the username with a NUL', 'Admin\u0000', badCredentials],
      ['the email as registered', 'Person@example.com', loggedIn],
      ['the email in lower case', 'person@example.com', loggedIn],
      ['the email in upper case', 'PERSON@EXAMPLE.COM', loggedIn],
      ['the email with a fullwidth ＠ (read as a username)', 'person＠example.com', badCredentials],
      ['the email with a trailing space', 'person@example.com ', badCredentials],
      ['an email with a NUL', 'person@example.com\u0000', badCredentials],
      ['SQL in the identifier', "' OR '1'='1' --", badCredentials],
      ['SQL in the email', "person@example.com' OR '1'='1", badCredentials]
    ]
    for (const [name, identifier, expected] of cases) {
      assertAnswer(t, await login(app, identifier, password), expected, name)
    }
    await assertStillAnswers(t, app)
  })
})
