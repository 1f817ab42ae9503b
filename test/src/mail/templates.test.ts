import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadTemplates, mailKinds, type MailKind, type MailVariables } from '../../../src/mail/templates.js'

const confirmations: MailKind[] = ['password_reset', 'email_verify', 'email_change']

const variables = (more: Partial<MailVariables> = {}): MailVariables => ({
  app_name: 'Acme Auth',
  username: 'ann',
  email: 'ann@example.test',
  link: 'https://app.example.test/confirm?token=tok_ABC-123',
  code: '123456',
  token: 'tok_ABC-123',
  expires_in: '60 minutes',
  code_expires_in: '15 minutes',
  new_email: 'b***@example.test',
  ...more
})

/** The problems loadTemplates reports for a directory holding files. */
async function problems (t: Test, files: Parameters<typeof t.testdir>[0]): Promise<string> {
  const dir = t.testdir(files)
  try {
    await loadTemplates(dir)
  } catch (error) {
    return (error as Error).message
  }
  throw new Error('loadTemplates did not fail')
}

/** Loads a directory that replaces password_reset's html part, and renders it. */
async function renderHtml (t: Test, html: string, more: Partial<MailVariables> = {}): Promise<string> {
  const templates = await loadTemplates(t.testdir({ 'password_reset.html': html }))
  return templates.render('password_reset', variables(more)).html
}

t.test('every kind carries the app name and greets the user', async (t) => {
  const templates = await loadTemplates()
  const subjects: Record<MailKind, string> = {
    password_reset: 'Reset your password for Acme Auth',
    email_verify: 'Confirm your email address for Acme Auth',
    email_change: 'Confirm your new email address for Acme Auth',
    email_change_notice: 'Your email address for Acme Auth is being changed',
    password_changed: 'Your password for Acme Auth was changed',
    account_deleted: 'Your account for Acme Auth was deleted'
  }
  for (const kind of mailKinds) {
    const mail = templates.render(kind, variables())
    t.equal(mail.subject, subjects[kind], kind)
    t.match(mail.text, /^Hello ann,$/m, kind)
    t.match(mail.text, /Acme Auth/, kind)
    t.match(mail.html, /^<!DOCTYPE html>\n<html lang="en">/, kind)
    t.match(mail.html, /<title>[^<]*Acme Auth[^<]*<\/title>/, kind)
    t.match(mail.html, />Hello ann,</, kind)
    t.match(mail.html, /<\/html>\n$/, kind)
    t.notMatch(mail.html, /<script|<img|<link|<style|src=|url\(|\{\{|\}\}/i, `${kind}: no external resources, no scripts, nothing left unrendered`)
    t.notMatch(mail.text, /\{\{|\}\}/, kind)
  }
})

t.test('password_reset, email_verify and email_change give the link, the code and the token', async (t) => {
  const templates = await loadTemplates()
  for (const kind of confirmations) {
    const { text, html } = templates.render(kind, variables())
    t.match(text, /^https:\/\/app\.example\.test\/confirm\?token=tok_ABC-123$/m, `${kind}: the link alone on its line`)
    t.match(text, /^Code: 123456$/m, kind)
    t.match(text, /^Token: tok_ABC-123$/m, kind)
    t.match(text, /open this link within 60 minutes:/, kind)
    t.match(text, /^Or enter this code in Acme Auth within 15 minutes:$/m, kind)
    t.match(text, /valid for 60 minutes/, kind)
    t.match(text, /If you did not ask for this, ignore this email/, kind)
    t.match(html, /<a href="https:\/\/app\.example\.test\/confirm\?token=tok_ABC-123" style="[^"]*">[^<]+<\/a>/, kind)
    t.match(html, /<p style="[^"]*monospace;font-size:32px;[^"]*">123456<\/p>/, kind)
    t.match(html, /<p style="[^"]*font-size:12px;[^"]*">[^<]*<code style="[^"]*">tok_ABC-123<\/code><\/p>/, kind)
  }
  t.match(templates.render('password_reset', variables()).text, /your password stays as it is/)
  t.match(templates.render('email_verify', variables()).text, /that ann@example\.test is the email address/)
  t.match(templates.render('email_change', variables()).text, /to ann@example\.test was requested/)
  t.match(templates.render('email_change', variables()).text, /your address stays as it is/)
})

t.test('without a link: no link line, no empty href, the code asked for on its own', async (t) => {
  const templates = await loadTemplates()
  for (const kind of confirmations) {
    const { text, html } = templates.render(kind, variables({ link: undefined }))
    t.notMatch(text, /https?:|link/i, kind)
    t.notMatch(html, /href|<a /, kind)
    t.match(text, /^To [a-z ]+, enter this code in Acme Auth within 15 minutes:$/m, `${kind}: {{^link}}`)
    t.notMatch(text, /Or enter/, kind)
    t.match(text, /^Code: 123456$/m, kind)
    t.match(text, /^Token: tok_ABC-123$/m, kind)
    t.same(templates.render(kind, variables({ link: '' })), { subject: templates.render(kind, variables()).subject, text, html }, `${kind}: an empty link is no link`)
  }
})

t.test('missing values render as nothing, and take their sentences with them', async (t) => {
  const templates = await loadTemplates()
  const { text, html } = templates.render('password_reset', { app_name: 'Acme Auth', username: 'ann', email: 'ann@example.test', code: '123456' })
  t.equal(text, `Hello ann,

We received a request to reset the password of your Acme Auth account.

To choose a new password, enter this code in Acme Auth:

Code: 123456

If you did not ask for this, ignore this email: your password stays as it is.
`)
  t.notMatch(html, /Token|token|href|within/)
})

t.test('email_change_notice and password_changed', async (t) => {
  const templates = await loadTemplates()
  const notice = templates.render('email_change_notice', variables())
  t.match(notice.text, /change of the email address of your Acme Auth account to b\*\*\*@example\.test was requested/)
  t.match(notice.text, /If it was not you, .*change your password .*contact support/)
  t.match(notice.html, /to b\*\*\*@example\.test was requested/)
  t.notMatch(notice.text, /123456|tok_ABC|https:/, 'no code, token or link')
  const changed = templates.render('password_changed', variables())
  t.match(changed.text, /password of your Acme Auth account was changed, and every session was signed out/)
  t.match(changed.text, /If it was not you, reset your password/)
  t.notMatch(changed.text, /123456|tok_ABC|https:/, 'no code, token or link')
})

t.test('HTML escapes values, in text and in attributes; text and subject take them raw', async (t) => {
  const templates = await loadTemplates()
  const username = '<script>alert("x")</script> a&b\'c'
  const { subject, text, html } = templates.render('password_reset', variables({
    username,
    app_name: 'A&B <Co>',
    link: 'https://app.example.test/?a=1&b="><script>x</script>'
  }))
  t.match(html, 'Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; a&amp;b&#39;c,')
  t.match(html, '<a href="https://app.example.test/?a=1&amp;b=&quot;&gt;&lt;script&gt;x&lt;/script&gt;" style=')
  t.match(html, '<title>Reset your password for A&amp;B &lt;Co&gt;</title>')
  t.notMatch(html, /<script|alert\("x"\)|a&b'c/)
  t.match(text, `Hello ${username},`)
  t.match(text, /^https:\/\/app\.example\.test\/\?a=1&b="><script>x<\/script>$/m)
  t.equal(subject, 'Reset your password for A&B <Co>')
})

t.test('CR and LF are taken out of values in the subject, not in the text', async (t) => {
  const templates = await loadTemplates()
  const { subject, text } = templates.render('password_changed', variables({ app_name: 'Acme\r\nBcc: victim@example.test\n' }))
  t.equal(subject, 'Your password for AcmeBcc: victim@example.test was changed')
  t.match(text, 'Acme\r\nBcc: victim@example.test\n account')
})

t.test('a file of the directory replaces that part only', async (t) => {
  const defaults = await loadTemplates()
  const templates = await loadTemplates(t.testdir({
    'password_reset.subject.txt': 'Custom reset for {{app_name}} ({{username}})\n',
    'email_verify.txt': '\uFEFFVerify, {{username}}: {{code}}\n'
  }))
  const reset = templates.render('password_reset', variables())
  t.equal(reset.subject, 'Custom reset for Acme Auth (ann)', 'trailing newline trimmed')
  t.equal(reset.text, defaults.render('password_reset', variables()).text)
  t.equal(reset.html, defaults.render('password_reset', variables()).html)
  const verify = templates.render('email_verify', variables())
  t.equal(verify.text, 'Verify, ann: 123456\n', 'a byte order mark is dropped')
  t.equal(verify.subject, defaults.render('email_verify', variables()).subject)
  t.equal(verify.html, defaults.render('email_verify', variables()).html)
  for (const kind of ['email_change', 'email_change_notice', 'password_changed'] as const) {
    t.same(templates.render(kind, variables()), defaults.render(kind, variables()), kind)
  }
  t.same(await loadTemplates(t.testdir({})), defaults, 'an empty directory changes nothing')
})

t.test('subdirectories are left alone (a ConfigMap volume has ..data/)', async (t) => {
  const templates = await loadTemplates(t.testdir({
    '..data': { 'password_changed.subject.txt': 'Changed {{app_name}}' },
    'password_changed.subject.txt': t.fixture('symlink', '..data/password_changed.subject.txt')
  }))
  t.equal(templates.render('password_changed', variables()).subject, 'Changed Acme Auth')
})

t.test('sections: {{#name}}, {{^name}}, nested, standalone lines', async (t) => {
  const template = `<p>
  {{#link}}
  <a href="{{ link }}">go</a>{{#code}} or {{code}}{{/code}}
  {{/link}}
  {{^link}}
  no link{{^code}}, no code{{/code}}
  {{/link}}
</p>`
  t.equal(await renderHtml(t, template), '<p>\n  <a href="https://app.example.test/confirm?token=tok_ABC-123">go</a> or 123456\n</p>')
  t.equal(await renderHtml(t, template, { link: undefined }), '<p>\n  no link\n</p>')
  t.equal(await renderHtml(t, template, { link: '', code: '' }), '<p>\n  no link, no code\n</p>')
  t.equal(await renderHtml(t, template, { code: undefined }), '<p>\n  <a href="https://app.example.test/confirm?token=tok_ABC-123">go</a>\n</p>')
  t.equal(await renderHtml(t, '{{#code}}{{#code}}twice {{code}}{{/code}}{{/code}}|{{^token}}x{{/token}}'), 'twice 123456|')
  t.equal(await renderHtml(t, 'a\r\n{{#code}}\r\nb\r\n{{/code}}\r\nc'), 'a\r\nb\r\nc', 'CRLF lines')
  t.equal(await renderHtml(t, 'plain, no tags; } and }} and { are text'), 'plain, no tags; } and }} and { are text')
})

t.test('a file whose name is not a template\'s is an error naming it and the allowed names', async (t) => {
  const message = await problems(t, { 'password_reset.htm': 'x', 'password_reset.html': '<p>ok</p>' })
  t.match(message, /password_reset\.htm: not a template's file name; allowed are password_reset\.subject\.txt, password_reset\.txt, password_reset\.html, email_verify\.subject\.txt, /)
  t.match(message, /account_deleted\.html$/)
  t.match(await problems(t, { '.DS_Store': '' }), /\.DS_Store: not a template's file name/)
  t.match(await problems(t, { 'dangling.txt': t.fixture('symlink', 'nowhere') }), /dangling\.txt: not a template's file name/)
})

t.test('mistakes in a template are errors naming the file', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['password_reset.txt', 'Hi {{user_name}}', /password_reset\.txt: unknown variable "user_name" in \{\{user_name\}\}; known are app_name, username, email, link, code, token, expires_in, code_expires_in, new_email/],
    ['email_verify.html', '{{#link}}<a href="{{link}}">x</a>', /email_verify\.html: unclosed section \{\{#link\}\}/],
    ['email_verify.html', '{{^link}}{{#code}}x{{/code}}', /email_verify\.html: unclosed section \{\{\^link\}\}/],
    ['email_change.txt', '{{#link}}{{#code}}x{{/link}}{{/code}}', /email_change\.txt: \{\{\/link\}\} closes \{\{#code\}\}/],
    ['email_change.txt', 'x{{/code}}', /email_change\.txt: \{\{\/code\}\} closes no section/],
    ['password_changed.html', '{{{username}}}', /password_changed\.html: malformed tag \{\{\{username\}\}/],
    ['password_changed.html', '{{user name}}', /malformed tag \{\{user name\}\}/],
    ['password_changed.txt', 'Hi {{username}', /password_changed\.txt: "\{\{" without a matching "\}\}" in "\{\{username\}"/],
    ['password_changed.txt', '{{code}} then {{username\n}}', /"\{\{" without a matching "\}\}" in "\{\{username\\n\}\}"/],
    ['email_change_notice.subject.txt', 'Line one\nline two\n', /email_change_notice\.subject\.txt: a subject must be a single line/]
  ]
  for (const [name, source, expected] of cases) {
    t.match(await problems(t, { [name]: source }), expected, source)
  }
})

t.test('every problem of a directory is told at once', async (t) => {
  const message = await problems(t, { 'email_verify.txt': '{{nope}}', 'extra.txt': '', 'password_reset.html': {} })
  const dir = t.testdirName
  t.ok(message.startsWith(`Mail templates in ${dir}:\n  `), message)
  t.equal(message.split('\n').length, 4)
  t.match(message, `  ${join(dir, 'email_verify.txt')}: unknown variable "nope"`)
  t.match(message, `  ${join(dir, 'extra.txt')}: not a template's file name`)
  t.match(message, `  ${join(dir, 'password_reset.html')}: EISDIR`)
})

t.test('a directory that does not exist or is no directory is an error', async (t) => {
  const missing = join(t.testdir(), 'missing')
  const error: Error = await loadTemplates(missing).then(() => { throw new Error('no error') }, (error) => error)
  t.ok(error.message.startsWith(`Mail templates: the directory ${missing} cannot be read (ENOENT`), error.message)
  const file = join(t.testdir({ 'file.txt': 'x' }), 'file.txt')
  await t.rejects(loadTemplates(file), { message: /^Mail templates: the directory .*file\.txt cannot be read \(ENOTDIR/ })
})
