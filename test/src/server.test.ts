import t from 'tap'
import { main, start } from '../../src/server.js'
import { newUser, testEnvironment } from '../helper.js'

t.test('start listens on HOST:PORT and serves the app over HTTP', async (t) => {
  const server = await start(await testEnvironment(t, { PORT: '0', HOST: '127.0.0.1' }))
  t.teardown(() => server.close())
  const { port } = server.server.address() as { port: number }
  const response = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(response.status, 200)
  t.same(await response.json(), { status: 'ok' })

  t.test('a second server on the same port fails to start and closes what it opened', async (t) => {
    await t.rejects(start(await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1' })), { code: 'EADDRINUSE' })
  })

  t.test('main reports a failure to start and sets exit code 1', async (t) => {
    const printed = t.capture(console, 'error')
    t.teardown(() => { process.exitCode = 0 })
    t.equal(await main(await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1' })), undefined)
    t.equal(process.exitCode, 1)
    t.match(printed()[0]?.args[0], { code: 'EADDRINUSE' })
  })
})

t.test('an answer finished after the shutdown began asks its client to hang up', async (t) => {
  const server = await start(await testEnvironment(t, { PORT: '0', HOST: '127.0.0.1' }))
  const { port } = server.server.address() as { port: number }
  // A registration spends several milliseconds in argon2: the shutdown begins while it is there.
  const pending = fetch(`http://127.0.0.1:${port}/auth/register/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(newUser()) })
  while (server.passwordHasher.load().inFlight === 0) await new Promise((resolve) => setImmediate(resolve))
  const closed = server.close()
  const response = await pending
  t.equal(response.status, 201, 'answered in full')
  t.equal(response.headers.get('connection'), 'close')
  await closed
})

t.test('main: a bad configuration prints one line per bad variable and sets exit code 1', async (t) => {
  const printed = t.capture(console, 'error')
  t.teardown(() => { process.exitCode = 0 })
  const server = await main({ PORT: 'eighty', ACCESS_TOKEN_TTL: 'forever' })
  t.equal(server, undefined)
  t.equal(process.exitCode, 1)
  const output = printed().map((call) => String(call.args[0])).join('\n')
  t.match(output, /^Invalid configuration:\n {2}PORT: must be integer, got "eighty"\n {2}ACCESS_TOKEN_TTL: /)
})

t.test('main returns the listening server on a good configuration', async (t) => {
  const server = await main(await testEnvironment(t, { PORT: '0' }))
  t.ok(server?.server.listening)
  await server?.close()
})

t.test('a worker of WEB_CONCURRENCY closes on SIGTERM only: SIGINT, sent by a terminal to every process, is its primary\'s', async (t) => {
  const before = { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }
  const alone = await start(await testEnvironment(t, { PORT: '0' }), { inWorker: false })
  t.same({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }, { SIGINT: before.SIGINT + 1, SIGTERM: before.SIGTERM + 1 }, 'alone: both close it')
  await alone.close()
  const worker = await start(await testEnvironment(t, { PORT: '0' }), { inWorker: true })
  const sigint = process.listeners('SIGINT').slice(before.SIGINT)
  t.equal(sigint.length, 1, 'a worker: one SIGINT listener')
  sigint[0]!('SIGINT')
  t.ok(worker.server.listening, 'that ignores it')
  t.equal(process.listenerCount('SIGTERM'), before.SIGTERM + 1, 'and SIGTERM closes it gracefully')
  await worker.close()
  t.same({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }, before, 'closing removes them all')
})

t.test('REQUEST_TIMEOUT: a body trickling in is cut off, however active the socket', async (t) => {
  const server = await start(await testEnvironment(t, { PORT: '0', HOST: '127.0.0.1', REQUEST_TIMEOUT: '1s' }))
  t.teardown(() => server.close())
  const { port } = server.server.address() as { port: number }
  const { connect } = await import('node:net')
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  const started = Date.now()
  socket.write('POST /auth/login/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{')
  // One byte every 200 ms: the socket is never idle, the request is never complete.
  const trickle = setInterval(() => { if (!socket.destroyed) socket.write(' ') }, 200)
  let answer = ''
  socket.on('data', (chunk) => { answer += String(chunk) })
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('close', resolve))
  clearInterval(trickle)
  const elapsed = Date.now() - started
  t.match(answer, /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout')
  t.ok(elapsed >= 900 && elapsed < 5000, `closed after ${elapsed} ms`)
})
