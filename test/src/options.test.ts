import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { LazyRequestLogger, prettyLogs, serverOptions } from '../../src/options.js'

/** A server with the production options for a log level, writing its log lines into `lines`. */
async function serverLoggingTo (t: Test, logLevel: string, lines: string[]) {
  const options = serverOptions({ logLevel })
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const server = Fastify({ ...options, logger: { ...(options.logger as object), stream } })
  server.get('/ping', async (request) => {
    request.log.info('an auth event')
    return { ok: true }
  })
  await server.ready()
  t.teardown(() => server.close())
  return server
}

t.test('request lines are written at debug and trace only; event lines always', async (t) => {
  for (const [level, expected] of [['info', false], ['debug', true], ['trace', true]] as const) {
    const lines: string[] = []
    const server = await serverLoggingTo(t, level, lines)
    await server.inject({ method: 'GET', url: '/ping', headers: { authorization: 'Bearer secret-token-text' } })
    const messages = lines.map((line) => JSON.parse(line).msg)
    t.equal(messages.includes('incoming request'), expected, `${level}: incoming request`)
    t.equal(messages.includes('request completed'), expected, `${level}: request completed`)
    t.ok(messages.includes('an auth event'), `${level}: the route's own line`)
    t.notOk(lines.join('').includes('secret-token-text'), `${level}: no Authorization header`)
  }
})

t.test('pretty lines at a terminal, unless NODE_ENV=production; JSON lines everywhere else', async (t) => {
  t.equal(prettyLogs(true, undefined), true)
  t.equal(prettyLogs(true, 'development'), true)
  t.equal(prettyLogs(true, 'production'), false)
  t.equal(prettyLogs(false, undefined), false)
  t.equal(prettyLogs(undefined, undefined), false, 'stdout piped or redirected')
  const pretty = serverOptions({ logLevel: 'info' }, { pretty: true }).logger as { transport?: { target: string }, redact: unknown }
  t.equal(pretty.transport?.target, 'pino-pretty')
  t.ok(pretty.redact, 'redaction holds in pretty lines too')
  t.equal((serverOptions({ logLevel: 'info' }).logger as { transport?: unknown }).transport, undefined)
})

t.test('a request logger becomes a pino child on its first line, with the request id and redaction', async (t) => {
  const lines: string[] = []
  const server = await serverLoggingTo(t, 'trace', lines)
  const parent = server.log
  let children = 0
  const counting = Object.create(parent, { child: { value: (...args: Parameters<typeof parent.child>) => { children++; return parent.child(...args) } } })
  const log = new LazyRequestLogger(counting, { reqId: 'req-7' }, {})
  t.equal(children, 0, 'nothing built before a line is logged')
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) log[level]({ body: { password: 'hunter2' } }, `a ${level} line`)
  log.silent()
  t.equal(children, 1, 'one child, built once')
  const written = lines.map((line) => JSON.parse(line))
  t.same(written.map((line) => line.msg), ['a fatal line', 'a error line', 'a warn line', 'a info line', 'a debug line', 'a trace line'])
  t.ok(written.every((line) => line.reqId === 'req-7' && line.body.password === '[redacted]'))

  t.same(log.bindings(), { reqId: 'req-7' })
  log.level = 'warn'
  t.equal(log.level, 'warn')
  t.equal(log.isLevelEnabled('info'), false)
  t.equal(log.isLevelEnabled('warn'), true)
  log.info('not written')
  log.child({ userId: 1 }).warn('from a child of the request logger')
  t.equal(JSON.parse(lines.at(-1)!).msg, 'from a child of the request logger')
  t.equal(JSON.parse(lines.at(-1)!).reqId, 'req-7')
  t.equal(JSON.parse(lines.at(-1)!).userId, 1)
  t.equal(lines.length, 7)
})
