// The real thing: `npm start` (the README's command) as a child process, driven over HTTP.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config.js'
import { newUser, testEnvironment } from './helper.js'

async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

interface Running {
  child: ChildProcess
  /** The server's own pid, from its first log line; npm's pid is child.pid. */
  serverPid?: number
  output: () => string
  exited: Promise<number | null>
}

/** Runs an npm script with the test environment; coverage of the child is not collected. */
function npm (args: string[], environment: Record<string, string>): Running {
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  // Its own process group, so the teardown can end npm and the server together.
  const child = spawn('npm', args, { env: { ...inherited, ...environment }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => output, exited }
}

async function startService (t: Test, environment: Record<string, string>): Promise<Running> {
  const running = npm(['start', '--silent'], environment)
  t.teardown(() => {
    try { process.kill(-running.child.pid!, 'SIGKILL') } catch {}
  })
  const deadline = Date.now() + 90_000
  while (!running.output().includes('Server listening at')) {
    if (running.child.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${running.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  running.serverPid = Number(/"pid":(\d+)/.exec(running.output())![1])
  return running
}

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

t.test('npm run keys:generate prints a key pair the service accepts', async (t) => {
  const running = npm(['run', 'keys:generate', '--silent'], {})
  t.equal(await running.exited, 0)
  const [privateKey, publicKey] = running.output().match(/-----BEGIN [A-Z ]+-----[^-]+-----END [A-Z ]+-----\n/g) ?? []
  t.match(privateKey, /^-----BEGIN PRIVATE KEY-----/)
  t.match(publicKey, /^-----BEGIN PUBLIC KEY-----/)
  t.ok(loadConfig({ JWT_PRIVATE_KEY: privateKey, JWT_PUBLIC_KEY: publicKey }).signingKey, 'a matching Ed25519 pair')
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
  t.match(purge.output(), /purged 0 expired tokens and 0 expired sessions \((pglite|postgres)\)/)
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
