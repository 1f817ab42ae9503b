import t from 'tap'
import { build, newUser } from '../helper.js'
import { assertAnswer, assertStillAnswers, login, register, type Expected } from './cases.js'

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
const usernameMessage = 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'

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

    const refused: Array<[string, string]> = [
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
    for (const [name, email] of refused) {
      const response = await register(app, newUser({ email, password }))
      assertAnswer(t, response, invalid, name)
      t.same(response.json().errors, { email: ['Enter a valid email address.'] }, `${name}: the email is the field at fault`)
    }
    await assertStillAnswers(t, app)
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
