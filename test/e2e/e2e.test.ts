// The real thing: `npm start` (the README's command) as a child process, driven over HTTP.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import t from 'tap'
import { and, count, eq, isNull } from 'drizzle-orm'
import { loadConfig } from '../../src/config.js'
import { openDatabase } from '../../src/db/connect.js'
import { tokens } from '../../src/db/schema.js'
import { newUser, testEnvironment } from '../helper.js'
import { mailEnvironment, mailsTo, startMailServer } from '../mail-server.js'
import { alone, freePort, npm, startService } from './service.js'

t.test('npm start serves the API, and tokens survive a restart', async (t) => {
  const port = await freePort()
  const environment = await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'debug' })
  const base = `http://127.0.0.1:${port}`
  const call = async (method: string, path: string, body?: object, token?: string) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }

  const first = await startService(t, environment)
  const user = newUser()
  t.equal((await call('POST', '/auth/register/', user)).status, 201)
  const login = await call('POST', '/auth/login/', { username: user.username, password: user.password })
  t.equal(login.status, 200)
  t.equal((await call('GET', '/auth/me/', undefined, login.body.access)).body.username, user.username)
  const jwks = await call('GET', '/.well-known/jwks.json')
  t.equal(jwks.body.keys.length, 1)
  t.equal((await call('GET', '/health')).status, 200)

  // SIGTERM in the middle of a burst of logins: every answer that arrives is a whole one.
  const burst = Array.from({ length: 20 }, () => fetch(`${base}/auth/login/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user.username, password: user.password })
  }).then(async (response) => ({ status: response.status, body: await response.text() }), (error: unknown) => ({ status: 0, body: String(error) })))
  await new Promise((resolve) => setTimeout(resolve, 50))
  process.kill(first.serverPid!, 'SIGTERM')
  const answers = await Promise.all(burst)
  const answered = answers.filter((answer) => answer.status !== 0)
  t.ok(answered.some((answer) => answer.status === 200), `${answered.length} of 20 logins answered before or during the shutdown`)
  for (const answer of answered) {
    t.ok([200, 503].includes(answer.status), `answered ${answer.status}`)
    t.doesNotThrow(() => JSON.parse(answer.body), `a complete ${answer.status} body`)
  }
  t.equal(await first.exited, 0, 'SIGTERM closes gracefully with exit code 0')

  const second = await startService(t, environment)
  const me = await call('GET', '/auth/me/', undefined, login.body.access)
  t.equal(me.status, 200, 'an access token issued before the restart still works')
  t.same((await call('GET', '/.well-known/jwks.json')).body, jwks.body, 'the same key after a restart')
  const refreshed = await call('POST', '/auth/refresh/', { refresh: login.body.refresh })
  t.equal(refreshed.status, 200, 'so does the refresh token')
  t.equal((await call('POST', '/auth/logout/', { refresh: refreshed.body.refresh })).status, 204)
  t.equal((await call('GET', '/auth/me/', undefined, refreshed.body.access)).body.code, 'token_revoked')

  process.kill(second.serverPid!, 'SIGTERM')
  t.equal(await second.exited, 0)

  const logs = first.output() + second.output()
  t.match(logs, /"msg":"login succeeded"/, 'debug logs were captured')
  for (const secret of [user.password, login.body.access, login.body.refresh, refreshed.body.access, refreshed.body.refresh]) {
    t.notOk(logs.includes(secret), 'no password or token in the logs')
  }
})

t.test('a mail committed before a SIGKILL, not yet sent, goes out once after the restart', async (t) => {
  const smtp = await startMailServer(t)
  await smtp.stop()
  const port = await freePort()
  const environment = await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...mailEnvironment(smtp) })
  const first = await startService(t, environment, true)
  const user = newUser()
  const registered = await fetch(`http://127.0.0.1:${port}/auth/register/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) })
  t.equal(registered.status, 201)
  const deadline = Date.now() + 10_000
  while (!first.output().includes('"msg":"mail not sent: retrying"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(first.output(), /"msg":"mail not sent: retrying"/, 'the SMTP server was down: the mail waits in the outbox')
  process.kill(first.serverPid!, 'SIGKILL')
  await first.exited
  await smtp.start()
  const second = await startService(t, environment, true)
  const mail = await smtp.mailTo(user.email, 30_000)
  t.equal(mail.subject, 'Confirm your email address for the service')
  t.same(await mailsTo(smtp, user.email, 1500), [], 'exactly once')
  process.kill(second.serverPid!, 'SIGTERM')
  t.equal(await second.exited, 0)
})

t.test('a SIGKILL in the middle of refreshes loses no session and forks none', async (t) => {
  const port = await freePort()
  const environment = await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', REFRESH_REUSE_GRACE: '600' })
  const base = `http://127.0.0.1:${port}`
  const post = (path: string, body: object) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const first = await startService(t, environment, true)
  const user = newUser()
  t.equal((await post('/auth/register/', user)).status, 201)
  const held: string[] = []
  for (let i = 0; i < 6; i++) held.push((await (await post('/auth/login/', { username: user.username, password: user.password })).json() as { refresh: string }).refresh)

  // Each client refreshes as fast as it can, keeping the newest refresh token it was given, until the server dies.
  const progress = { rotations: 0 }
  const clients = held.map(async (_, index) => {
    for (;;) {
      let response: Response
      try {
        response = await post('/auth/refresh/', { refresh: held[index] })
      } catch {
        return
      }
      if (response.status !== 200) throw new Error(`refresh answered ${response.status}: ${await response.text()}`)
      held[index] = (await response.json() as { refresh: string }).refresh
      progress.rotations++
    }
  })
  while (progress.rotations < 60) await new Promise((resolve) => setTimeout(resolve, 5))
  process.kill(first.serverPid!, 'SIGKILL')
  await Promise.all(clients)
  await first.exited

  const second = await startService(t, environment, true)
  // A token whose rotation committed unanswered is a replay within the grace window: the same replacement.
  for (const token of held) {
    const response = await post('/auth/refresh/', { refresh: token })
    t.equal(response.status, 200, 'the token each client held still refreshes')
  }
  process.kill(second.serverPid!, 'SIGTERM')
  t.equal(await second.exited, 0)

  const { db, close } = await openDatabase({ databaseUrl: environment.DATABASE_URL, databasePoolSize: 1, dataDir: environment.DATA_DIR! })
  t.teardown(close)
  const live = await db.select({ sessionId: tokens.sessionId, count: count() }).from(tokens)
    .where(and(eq(tokens.type, 'refresh'), isNull(tokens.revokedAt))).groupBy(tokens.sessionId)
  t.equal(live.length, held.length, 'every session is still live')
  t.ok(live.every((row) => row.count === 1), 'each with exactly one live refresh token')
})

t.test('npm run keys:generate prints a key pair the service accepts', async (t) => {
  const running = npm(['run', 'keys:generate', '--silent'], {})
  t.equal(await running.exited, 0)
  const [privateKey, publicKey] = running.output().match(/-----BEGIN [A-Z ]+-----[^-]+-----END [A-Z ]+-----\n/g) ?? []
  t.match(privateKey, /^-----BEGIN PRIVATE KEY-----/)
  t.match(publicKey, /^-----BEGIN PUBLIC KEY-----/)
  t.ok(loadConfig({ JWT_PRIVATE_KEY: privateKey, JWT_PUBLIC_KEY: publicKey }).signingKey, 'a matching Ed25519 pair')
})

t.test('npm run user:create reads a JSON line on stdin and creates the user', async (t) => {
  const environment = await testEnvironment(t)
  const user = newUser()
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  const child = spawn('npm', ['run', 'user:create', '--silent'], { env: { ...inherited, ...environment }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stdin.end(`${JSON.stringify(user)}\n`)
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(JSON.parse(stdout), { id: Number, username: user.username, email: user.email })
})

t.test('npm start refuses a bad configuration before listening', async (t) => {
  const running = npm(['start', '--silent'], { ...(await testEnvironment(t)), PORT: 'eighty', REFRESH_TOKEN_TTL: '-1' })
  t.equal(await running.exited, 1)
  t.match(running.output(), /PORT: must be integer, got "eighty"\n {2}REFRESH_TOKEN_TTL: /)
  t.notMatch(running.output(), /Server listening/)
})

t.test('npm run db:migrate applies the migrations and exits; db:purge purges once', async (t) => {
  const environment = await testEnvironment(t)
  const running = npm(['run', 'db:migrate', '--silent'], environment)
  t.equal(await running.exited, 0)
  t.match(running.output(), /migrations applied \((pglite|postgres)\)/)
  const purge = npm(['run', 'db:purge', '--silent'], environment)
  t.equal(await purge.exited, 0)
  t.match(purge.output(), /purged 0 expired tokens and 0 expired sessions \((pglite|postgres)\); 0 mailed tokens, 0 mails and 0 audit events/)
  const badPurge = npm(['run', 'db:purge', '--silent'], { ...environment, PORT: 'none' })
  t.equal(await badPurge.exited, 1)
  t.match(badPurge.output(), /PORT: must be integer/)
  const failedPurge = npm(['run', 'db:purge', '--silent'], { ...environment, DATABASE_URL: '', DATA_DIR: 'package.json' })
  t.equal(await failedPurge.exited, 1)
  t.match(failedPurge.output(), /EEXIST|ENOTDIR/)

  const refused = npm(['run', 'db:migrate', '--silent'], { ...(await testEnvironment(t)), DATABASE_URL: 'mysql://nope' })
  t.equal(await refused.exited, 1)
  t.match(refused.output(), /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/)

  // A data dir that is a file: the database cannot open.
  const unopenable = npm(['run', 'db:migrate', '--silent'], { ...(await testEnvironment(t)), DATABASE_URL: '', DATA_DIR: 'package.json' })
  t.equal(await unopenable.exited, 1)
  t.match(unopenable.output(), /EEXIST|ENOTDIR/)
})

t.test('two real instances on one PostgreSQL: a logout on one is refused by the other within 1 s', {
  skip: process.env.DATABASE_URL === undefined && 'runs when DATABASE_URL names a PostgreSQL server'
}, async (t) => {
  const shared = await testEnvironment(t, { HOST: '127.0.0.1', LOG_LEVEL: 'info' })
  const ports = [await freePort(), await freePort()]
  // One after the other: each npm start compiles into the same dist/.
  for (const port of ports) await startService(t, { ...shared, PORT: String(port) })
  const [one, two] = ports.map((port) => `http://127.0.0.1:${port}`) as [string, string]
  const post = (base: string, path: string, body: object) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

  const user = newUser()
  t.equal((await post(one, '/auth/register/', user)).status, 201)
  const pair = await (await post(one, '/auth/login/', { username: user.username, password: user.password })).json() as { access: string, refresh: string }
  const me = (base: string) => fetch(`${base}/auth/me/`, { headers: { authorization: `Bearer ${pair.access}` } })
  t.equal((await me(one)).status, 200)

  t.equal((await post(two, '/auth/logout/', { refresh: pair.refresh })).status, 204)
  const started = Date.now()
  let status = 200
  while (status === 200 && Date.now() - started < 1000) {
    status = (await me(one)).status
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(status, 401, `refused by the other instance after ${Date.now() - started} ms`)
})

t.test('WEB_CONCURRENCY=2: two workers share the port, both serve, revocations hold across them, SIGTERM stops all', {
  skip: process.env.DATABASE_URL === undefined && 'runs when DATABASE_URL names a PostgreSQL server'
}, async (t) => {
  const port = await freePort()
  const running = await startService(t, { ...(await testEnvironment(t, { HOST: '127.0.0.1', LOG_LEVEL: 'debug' })), PORT: String(port), WEB_CONCURRENCY: '2' })
  const deadline = Date.now() + 60_000
  while (running.output().split('Server listening at').length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(running.output(), /"msg":"primary started"/)

  // A connection of its own for each request, so that the primary hands each to the next worker.
  const call = async (method: string, path: string, body?: object, token?: string) => {
    const { status, text } = await alone(port, method, path, { body, token })
    return { status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, string> }
  }

  const user = newUser()
  t.equal((await call('POST', '/auth/register/', user)).status, 201)
  const pair = (await call('POST', '/auth/login/', { username: user.username, password: user.password })).body
  const before = []
  for (let i = 0; i < 6; i++) before.push((await call('GET', '/auth/me/', undefined, pair.access)).status)
  t.same(before, [200, 200, 200, 200, 200, 200])
  const servedBy = new Set([...running.output().matchAll(/"pid":(\d+)[^\n]*"msg":"incoming request"/g)].map((match) => match[1]))
  t.equal(servedBy.size, 2, 'requests were served by both workers')
  t.notOk(servedBy.has(String(running.serverPid)), 'and never by the primary')

  t.equal((await call('POST', '/auth/logout/', { refresh: pair.refresh })).status, 204)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const after = []
  for (let i = 0; i < 6; i++) after.push((await call('GET', '/auth/me/', undefined, pair.access)).body.code)
  t.same(after, Array(6).fill('token_revoked'), 'within a second, every worker refuses the logged-out token')

  // A worker killed outright is replaced, and the port keeps answering.
  process.kill(Number([...servedBy][0]), 'SIGKILL')
  const replaced = Date.now() + 30_000
  while (running.output().split('Server listening at').length < 4 && Date.now() < replaced) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(running.output(), /"msg":"worker died: starting another"/)
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await call('GET', '/health/live')).status)
  t.same(statuses, [200, 200, 200, 200], 'both workers serve again')

  process.kill(running.serverPid!, 'SIGTERM')
  t.equal(await running.exited, 0, 'SIGTERM to the primary stops every worker gracefully, exit code 0')
  t.match(running.output(), /"msg":"stopping the workers"/)
})

t.test('WEB_CONCURRENCY=2 on a port already taken: the workers cannot listen, so all stop with exit code 1', {
  skip: process.env.DATABASE_URL === undefined && 'runs when DATABASE_URL names a PostgreSQL server'
}, async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const { port } = taken.address() as { port: number }
  const running = npm(['start', '--silent'], { ...(await testEnvironment(t, { HOST: '127.0.0.1', LOG_LEVEL: 'info' })), PORT: String(port), WEB_CONCURRENCY: '2' })
  t.teardown(() => {
    try { process.kill(-running.child.pid!, 'SIGKILL') } catch {}
  })
  t.equal(await running.exited, 1)
  t.match(running.output(), /"msg":"worker failed to start"/)
  t.match(running.output(), /EADDRINUSE/)
})

t.test('WEB_CONCURRENCY above 1 on the embedded database stops before listening, with a clear message', async (t) => {
  const running = npm(['start', '--silent'], { ...(await testEnvironment(t)), DATABASE_URL: '', WEB_CONCURRENCY: '2' })
  t.equal(await running.exited, 1)
  t.match(running.output(), /WEB_CONCURRENCY: more than one process needs DATABASE_URL; the embedded PGlite database serves one process only/)
  t.notMatch(running.output(), /Server listening/)
})

t.test('at a terminal npm start logs pretty lines; with NODE_ENV=production, JSON lines', async (t) => {
  t.equal(await npm(['run', 'build', '--silent'], {}).exited, 0)
  for (const [nodeEnv, pretty] of [['development', true], ['production', false]] as const) {
    // In production, /auth/introspect/ must be closed by a secret or opened on purpose.
    const environment = { ...(await testEnvironment(t, { PORT: String(await freePort()), LOG_LEVEL: 'info', INTROSPECTION_PUBLIC: 'on' })), NODE_ENV: nodeEnv }
    // script(1) runs the command on a pseudo-terminal, as a person's shell would. The server runs in a
    // session of its own there, so the shell prints its pid before it becomes the server.
    const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
    const child = spawn('script', ['-qec', 'echo "server pid $$"; exec node dist/src/server.js', '/dev/null'], { env: { ...inherited, ...environment }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (chunk) => { output += chunk })
    const exited = once(child, 'exit')
    const deadline = Date.now() + 90_000
    while (!output.includes('Server listening at') && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const serverPid = Number(/server pid (\d+)/.exec(output)?.[1])
    t.teardown(() => {
      try { process.kill(serverPid, 'SIGKILL') } catch {}
    })
    const line = output.split('\n').find((candidate) => candidate.includes('Server listening at')) ?? ''
    if (pretty) t.match(line, /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] .*INFO.*: Server listening at http:/, `${nodeEnv}: a pretty line`)
    else t.match(line, /^\{"level":30,.*"msg":"Server listening at http:/, `${nodeEnv}: a JSON line`)
    const warned = output.split('\n').filter((candidate) => candidate.includes('open in production'))
    if (pretty) t.same(warned, [], `${nodeEnv}: no warning about open surfaces`)
    else t.match(warned, [/"level":40,.*\/metrics/, /"level":40,.*introspect/, /"level":40,.*HSTS/], `${nodeEnv}: one warning per open surface`)
    // Stopped while its terminal is still there, as a person would with Ctrl-C.
    process.kill(serverPid, 'SIGINT')
    await exited
    t.throws(() => process.kill(serverPid, 0), { code: 'ESRCH' }, `${nodeEnv}: the server has exited`)
  }
})
