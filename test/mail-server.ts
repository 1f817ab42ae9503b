import type { Socket } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'

export interface ReceivedMail {
  /** Envelope recipients (RCPT TO), lower-case. */
  to: string[]
  /** Envelope sender (MAIL FROM). */
  from: string
  subject: string
  text: string
  html: string
  /** The raw RFC 822 message. */
  raw: string
}

export interface MailServer {
  /** smtp://tester:secret-pass@127.0.0.1:<port> — the server requires exactly these credentials (AUTH PLAIN/LOGIN over plain TCP; no STARTTLS offered, so nodemailer does not try TLS). */
  url: string
  port: number
  /** Every mail accepted so far, in order. */
  received: ReceivedMail[]
  /** Resolves with the first mail to `address` (case-insensitive) that no earlier call of mailTo handed out; rejects after timeoutMs (default 10_000) with an error naming the address and listing what did arrive. */
  mailTo: (address: string, timeoutMs?: number) => Promise<ReceivedMail>
  /** When true the server answers every RCPT TO (or DATA) with a permanent 550 error; set back to false to accept again. */
  refuse: boolean
  /** Closes the listening socket and drops open connections: the SMTP server is down. */
  stop: () => Promise<void>
  /** Listens again on the same port after stop(). */
  start: () => Promise<void>
}

const USER = 'tester'
const PASSWORD = 'secret-pass'
const HOST = '127.0.0.1'

interface Waiter {
  address: string
  resolve: (mail: ReceivedMail) => void
  /** Rejects the call when the test ends first. */
  abandon: (error: Error) => void
  timer: NodeJS.Timeout
}

function refusal (message: string): Error {
  return Object.assign(new Error(message), { responseCode: 550 })
}

function summary (mails: ReceivedMail[]): string {
  if (mails.length === 0) return 'no mail arrived'
  return `${mails.length} mail(s) arrived: ` + mails.map(mail => `[to ${mail.to.join(', ')}: ${JSON.stringify(mail.subject)}]`).join(', ')
}

/** Starts a server on a free port of 127.0.0.1 (port 0 unless given); closed when the test t ends. */
export async function startMailServer (t: Test, options: { port?: number } = {}): Promise<MailServer> {
  let smtp: SMTPServer | undefined
  let sockets = new Set<Socket>()
  const received: ReceivedMail[] = []
  // For each mail, the addresses a mailTo call has handed it out for: a mail to two recipients serves one call for each.
  const handedOut = new Map<ReceivedMail, Set<string>>()
  const waiters: Waiter[] = []

  const claim = (mail: ReceivedMail, address: string): boolean => {
    if (!mail.to.includes(address)) return false
    const claimed = handedOut.get(mail) ?? new Set<string>()
    if (claimed.has(address)) return false
    claimed.add(address)
    handedOut.set(mail, claimed)
    return true
  }

  const deliver = (mail: ReceivedMail): void => {
    received.push(mail)
    for (const waiter of [...waiters]) {
      if (claim(mail, waiter.address)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        clearTimeout(waiter.timer)
        waiter.resolve(mail)
      }
    }
  }

  const create = (): SMTPServer => new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth (auth, _session, callback) {
      if (auth.username === USER && auth.password === PASSWORD) {
        callback(null, { user: USER })
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }))
      }
    },
    onRcptTo (address, _session, callback) {
      if (server.refuse) return callback(refusal(`Mailbox unavailable: ${address.address} refused`))
      callback()
    },
    onData (stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', callback)
      stream.on('end', () => {
        if (server.refuse) return callback(refusal('Message refused'))
        const raw = Buffer.concat(chunks)
        simpleParser(raw).then(parsed => {
          deliver({
            to: session.envelope.rcptTo.map(recipient => recipient.address.toLowerCase()),
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            raw: raw.toString('utf8')
          })
          callback()
        }, (error: Error) => callback(error))
      })
    }
  })

  const start = async (): Promise<void> => {
    if (smtp !== undefined) return
    // A fresh instance each time: its handlers of the net server's 'listening' and 'close' are one-shot.
    const instance = create()
    const connections = new Set<Socket>()
    // Connection errors (a client that resets, a socket stop() destroys) are no business of the tests.
    instance.on('error', () => {})
    instance.server.on('connection', socket => {
      connections.add(socket)
      socket.once('close', () => connections.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      instance.server.once('error', reject)
      instance.listen(server.port, HOST, () => {
        instance.server.off('error', reject)
        resolve()
      })
    })
    const address = instance.server.address()
    if (address === null || typeof address === 'string') throw new Error('the SMTP server has no TCP address')
    server.port = address.port
    server.url = `smtp://${USER}:${PASSWORD}@${HOST}:${address.port}`
    smtp = instance
    sockets = connections
  }

  const stop = async (): Promise<void> => {
    const instance = smtp
    if (instance === undefined) return
    smtp = undefined
    // SMTPServer.close() stops listening at once but waits up to closeTimeout (30 s) for open sessions to
    // end; destroying their sockets as well makes it immediate: the close callback runs once the last one is gone.
    await new Promise<void>(resolve => {
      instance.close(resolve)
      for (const socket of sockets) socket.destroy()
    })
  }

  // Not async: the promise it returns must be the one abandon() marks as handled.
  const mailTo = (address: string, timeoutMs = 10_000): Promise<ReceivedMail> => {
    const wanted = address.toLowerCase()
    const ready = received.find(mail => claim(mail, wanted))
    if (ready !== undefined) return Promise.resolve(ready)
    const promise: Promise<ReceivedMail> = new Promise((resolve, reject) => {
      const waiter: Waiter = {
        address: wanted,
        resolve,
        // Rejects a caller that still awaits it, without an unhandled rejection for one that never did.
        abandon: error => {
          promise.catch(() => {})
          reject(error)
        },
        timer: setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`no mail to ${address} within ${timeoutMs} ms; ${summary(received)}`))
        }, timeoutMs)
      }
      waiters.push(waiter)
    })
    return promise
  }

  const server: MailServer = {
    url: '',
    port: options.port ?? 0,
    received,
    mailTo,
    refuse: false,
    stop,
    start
  }

  t.teardown(async () => {
    for (const waiter of waiters.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.abandon(new Error(`the mail server closed before a mail to ${waiter.address} arrived`))
    }
    await stop()
  })

  await start()
  return server
}

function line (mail: ReceivedMail, pattern: RegExp, what: string): string {
  const match = pattern.exec(mail.text)
  if (match?.[1] === undefined) {
    throw new Error(`no ${what} line in the mail to ${mail.to.join(', ')} (${JSON.stringify(mail.subject)}): ${JSON.stringify(mail.text)}`)
  }
  return match[1]
}

/** The 6-digit code of a mail: the `Code: 123456` line of its text part. Throws if there is none. */
export function codeOf (mail: ReceivedMail): string {
  return line(mail, /^[ \t]*Code:[ \t]*(\d{6})[ \t\r]*$/m, '`Code: <6 digits>`')
}

/** The link token of a mail: the `Token: <base64url>` line of its text part. Throws if there is none. */
export function tokenOf (mail: ReceivedMail): string {
  return line(mail, /^[ \t]*Token:[ \t]*([A-Za-z0-9_-]+)[ \t\r]*$/m, '`Token: <base64url>`')
}

/** The mails to `address` that arrived within `ms` (waits the whole time): for asserting that nothing (or exactly one) arrived. */
export async function mailsTo (server: MailServer, address: string, ms: number): Promise<ReceivedMail[]> {
  const wanted = address.toLowerCase()
  const from = server.received.length
  await new Promise(resolve => setTimeout(resolve, ms))
  return server.received.slice(from).filter(mail => mail.to.includes(wanted))
}

/** The variables that send the service's mail to `server`. */
export const mailEnvironment = (server: MailServer) => ({ SMTP_URL: server.url, MAIL_FROM: 'Auth <auth@example.com>' })
