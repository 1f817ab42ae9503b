import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { createTransport } from 'nodemailer'
import t from 'tap'
import type { Test } from 'tap'
import { codeOf, mailsTo, startMailServer, tokenOf, type MailServer, type ReceivedMail } from './mail-server.js'

/** Sends one mail through nodemailer's SMTP transport at url, as the service does. */
async function send (t: Test, url: string, mail: { to: string | string[], subject?: string, text?: string, html?: string }): Promise<void> {
  const transport = createTransport(url)
  t.teardown(() => transport.close())
  await transport.sendMail({ from: 'Auth Service <no-reply@auth.test>', subject: 'Hello', text: 'Hello', ...mail })
}

/** A raw SMTP dialogue: each command's full reply (multi-line replies joined), for what nodemailer cannot do step by step. */
async function dialogue (t: Test, port: number): Promise<{ socket: Socket, command: (line: string) => Promise<string> }> {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.setEncoding('utf8')
  let buffer = ''
  let waiting: (() => void) | undefined
  socket.on('data', (chunk: string) => {
    buffer += chunk
    waiting?.()
  })
  const reply = async (): Promise<string> => {
    // A reply ends with a line whose code is followed by a space, not a dash.
    while (!/(^|\r\n)\d{3} [^\r\n]*\r\n$/.test(buffer)) {
      await new Promise<void>((resolve, reject) => {
        waiting = resolve
        socket.once('close', () => reject(new Error(`connection closed; read so far: ${buffer}`)))
      })
    }
    const text = buffer
    buffer = ''
    return text
  }
  const command = async (line: string): Promise<string> => {
    socket.write(`${line}\r\n`)
    return reply()
  }
  await reply()
  return { socket, command }
}

t.test('a mail arrives with its envelope, subject, text and html', async t => {
  const server = await startMailServer(t)
  t.match(server.url, /^smtp:\/\/tester:secret-pass@127\.0\.0\.1:\d+$/)
  t.equal(server.url, `smtp://tester:secret-pass@127.0.0.1:${server.port}`)
  t.ok(server.port > 0)

  const arrival = server.mailTo('alice@example.test')
  await send(t, server.url, { to: ['Alice@Example.TEST', 'bob@example.test'], subject: 'Verify your address', text: 'Plain body\n', html: '<p>HTML body</p>' })
  const mail = await arrival

  t.same(mail.to, ['alice@example.test', 'bob@example.test'])
  t.equal(mail.from, 'no-reply@auth.test')
  t.equal(mail.subject, 'Verify your address')
  t.equal(mail.text, 'Plain body\n')
  t.equal(mail.html, '<p>HTML body</p>')
  t.match(mail.raw, /^Subject: Verify your address\r$/m)
  t.match(mail.raw, /^From: Auth Service <no-reply@auth\.test>\r$/m)
  t.same(server.received, [mail])
  // Each recipient of a mail gets it handed out once.
  t.equal(await server.mailTo('BOB@example.test'), mail)
})

t.test('a text-only mail has an empty html', async t => {
  const server = await startMailServer(t)
  await send(t, server.url, { to: 'carol@example.test', text: 'only text' })
  const mail = await server.mailTo('carol@example.test')
  t.equal(mail.text.trimEnd(), 'only text') // mailparser ends a single text part with a newline
  t.equal(mail.html, '')
})

t.test('codeOf and tokenOf read the Code and Token lines of the text part', async t => {
  const server = await startMailServer(t)
  await send(t, server.url, { to: 'dave@example.test', text: 'Hello Dave,\nCode: 123456\nToken: abc_DEF-123\n\nBye\n' })
  const mail = await server.mailTo('dave@example.test')
  t.equal(codeOf(mail), '123456')
  t.equal(tokenOf(mail), 'abc_DEF-123')

  const bare: ReceivedMail = { to: ['erin@example.test'], from: 'x@auth.test', subject: 'Nothing here', text: 'Code: 12345\nCode: 1234567\nToken: not+base64url\n', html: '', raw: '' }
  t.throws(() => codeOf(bare), /no `Code: <6 digits>` line in the mail to erin@example\.test \("Nothing here"\)/)
  t.throws(() => tokenOf(bare), /no `Token: <base64url>` line/)
  t.equal(codeOf({ ...bare, text: 'Code: 654321\r\n' }), '654321')
  t.equal(tokenOf({ ...bare, text: '  Token: xyz  \r\n' }), 'xyz')
})

t.test('wrong or missing credentials are rejected', async t => {
  const server = await startMailServer(t)
  await t.rejects(send(t, server.url.replace('secret-pass', 'wrong-pass'), { to: 'frank@example.test' }), { code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN' })
  await t.rejects(send(t, server.url.replace('tester:', 'someone:'), { to: 'frank@example.test' }), { code: 'EAUTH', responseCode: 535 })
  await t.rejects(send(t, `smtp://127.0.0.1:${server.port}`, { to: 'frank@example.test' }), { code: 'EENVELOPE', responseCode: 530, command: 'MAIL FROM' })
  t.same(server.received, [])
})

t.test('refuse answers RCPT TO with a permanent 550 until it is set back', async t => {
  const server = await startMailServer(t)
  server.refuse = true
  await t.rejects(send(t, server.url, { to: 'grace@example.test' }), { code: 'EENVELOPE', responseCode: 550, permanent: true, command: 'RCPT TO' })
  t.same(server.received, [])

  server.refuse = false
  await send(t, server.url, { to: 'grace@example.test', subject: 'Second try' })
  t.equal((await server.mailTo('grace@example.test')).subject, 'Second try')
})

t.test('refuse set after RCPT TO refuses the DATA', async t => {
  const server = await startMailServer(t)
  const { command } = await dialogue(t, server.port)
  t.match(await command('EHLO client.test'), /^250-/)
  t.match(await command(`AUTH PLAIN ${Buffer.from('\0tester\0secret-pass').toString('base64')}`), /^235 /)
  t.match(await command('MAIL FROM:<no-reply@auth.test>'), /^250 /)
  t.match(await command('RCPT TO:<heidi@example.test>'), /^250 /)
  server.refuse = true
  t.match(await command('DATA'), /^354 /)
  t.match(await command('Subject: refused\r\n\r\nbody\r\n.'), /^550 Message refused/)
  t.same(server.received, [])
})

t.test('stop() takes the server down, start() brings it back on the same port', async t => {
  const server = await startMailServer(t)
  const { port, url } = server
  await send(t, url, { to: 'ivan@example.test', subject: 'before' })

  await server.stop()
  await server.stop() // already down: nothing to do
  await t.rejects(send(t, url, { to: 'ivan@example.test', subject: 'while down' }), {
    code: 'ESOCKET',
    originalCode: 'ECONNREFUSED',
    errno: -111,
    syscall: 'connect',
    command: 'CONN',
    message: `connect ECONNREFUSED 127.0.0.1:${port}`
  })

  await server.start()
  await server.start() // already up: nothing to do
  t.equal(server.port, port)
  t.equal(server.url, url)
  await send(t, url, { to: 'ivan@example.test', subject: 'after' })
  t.same(server.received.map(mail => mail.subject), ['before', 'after'])
})

t.test('stop() drops open connections at once instead of waiting for them', async t => {
  const server = await startMailServer(t)
  const { socket, command } = await dialogue(t, server.port)
  t.match(await command('EHLO client.test'), /^250-/)
  const closed = once(socket, 'close')
  const started = Date.now()
  await server.stop()
  await closed
  t.ok(Date.now() - started < 5000, 'well before smtp-server\'s 30 s close timeout')
  const refused = connect(server.port, '127.0.0.1')
  const [error] = await once(refused, 'error') as [NodeJS.ErrnoException]
  t.equal(error.code, 'ECONNREFUSED')
})

t.test('mailTo', async t => {
  t.test('waits for a mail that has not arrived yet, and hands each mail out once', async t => {
    const server = await startMailServer(t)
    const first = server.mailTo('judy@example.test')
    const second = server.mailTo('JUDY@example.test')
    await send(t, server.url, { to: 'judy@example.test', subject: 'one' })
    await send(t, server.url, { to: 'judy@example.test', subject: 'two' })
    await send(t, server.url, { to: 'judy@example.test', subject: 'three' })
    t.equal((await first).subject, 'one')
    t.equal((await second).subject, 'two')
    t.equal((await server.mailTo('judy@example.test')).subject, 'three')
    await t.rejects(server.mailTo('judy@example.test', 50), /no mail to judy@example\.test within 50 ms/)
  })

  t.test('times out naming the address and listing what did arrive', async t => {
    const server = await startMailServer(t)
    await t.rejects(server.mailTo('nobody@example.test', 100), { message: 'no mail to nobody@example.test within 100 ms; no mail arrived' })
    await send(t, server.url, { to: 'kim@example.test', subject: 'For Kim' })
    await send(t, server.url, { to: ['leo@example.test', 'mia@example.test'], subject: 'For two' })
    await t.rejects(server.mailTo('Nobody@example.test', 100), {
      message: 'no mail to Nobody@example.test within 100 ms; 2 mail(s) arrived: [to kim@example.test: "For Kim"], [to leo@example.test, mia@example.test: "For two"]'
    })
  })

  t.test('a call still waiting when the test ends is rejected', async t => {
    let pending: Promise<ReceivedMail> | undefined
    await t.test('inner', async t => {
      const server = await startMailServer(t)
      pending = server.mailTo('late@example.test', 60_000)
      // Never awaited: ending the test must not turn it into an unhandled rejection.
      server.mailTo('forgotten@example.test', 60_000)
    })
    await t.rejects(pending!, /the mail server closed before a mail to late@example\.test arrived/)
  })
})

t.test('mailsTo collects what arrives within the window', async t => {
  const server = await startMailServer(t)
  await send(t, server.url, { to: 'nina@example.test', subject: 'earlier' })
  const window = mailsTo(server, 'Nina@example.test', 300)
  const nothing = mailsTo(server, 'oscar@example.test', 300)
  await send(t, server.url, { to: 'nina@example.test', subject: 'within' })
  const mails = await window
  t.same(mails.map(mail => mail.subject), ['within'], 'only the mail that arrived within the window')
  t.same(await nothing, [])
})

t.test('listens on a given port', async t => {
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise(resolve => probe.close(resolve))

  const server: MailServer = await startMailServer(t, { port })
  t.equal(server.port, port)
  await send(t, server.url, { to: 'pat@example.test' })
  t.equal(server.received.length, 1)

  await t.rejects(startMailServer(t, { port }), { code: 'EADDRINUSE' })
})
