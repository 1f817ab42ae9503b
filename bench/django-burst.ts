// What a wave of first logins of users moved in from Django does to everyone else's logins: the real app
// (PGlite, HASH_CONCURRENCY=2, the default queue), 20 users whose stored hash is Django 5.0's PBKDF2 at 720,000
// iterations logging in at once, while ordinary argon2id users keep logging in. Prints latencies and the
// event loop's delay. Run: npx tsc -p tsconfig.bench.json && node dist/bench/django-burst.js
import { pbkdf2Sync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { serverOptions } from '../src/options.js'

const burst = Number(process.env.BURST ?? 20)
const iterations = 720_000
const password = 'correct horse battery'
const dir = mkdtempSync(join(tmpdir(), 'django-burst-'))
const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', RATE_LIMIT: 'off', HASH_CONCURRENCY: '2' })
const server = Fastify(serverOptions(config))
await server.register(fp(app), { config })
await server.ready()

/** Django's PBKDF2PasswordHasher.encode, for the fixture users only. */
const djangoHash = () => {
  const salt = randomBytes(16).toString('hex')
  return `pbkdf2_sha256$${iterations}$${salt}$${pbkdf2Sync(password, salt, iterations, 32, 'sha256').toString('base64')}`
}

const register = async (name: string) => {
  const answer = await server.inject({ method: 'POST', url: '/auth/register/', payload: { username: name, email: `${name}@example.com`, password } })
  return answer.json() as { id: number }
}
const login = async (username: string) => {
  const started = performance.now()
  const answer = await server.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })
  return { status: answer.statusCode, ms: performance.now() - started }
}

const ordinary = await Promise.all(Array.from({ length: 4 }, (_, i) => register(`ordinary${i}`).then(() => `ordinary${i}`)))
const imported: string[] = []
for (let i = 0; i < burst; i++) {
  const name = `imported${i}`
  const { id } = await register(name)
  const user = (await server.usersRepository.findById(id))!
  await server.usersRepository.setPasswordHash(id, djangoHash(), user.passwordHash)
  imported.push(name)
}

const summary = (label: string, results: Array<{ status: number, ms: number }>) => {
  const ms = results.map((r) => r.ms).sort((a, b) => a - b)
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(0)
  const statuses: Record<number, number> = {}
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1
  console.log(`${label}: n=${ms.length} p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms, statuses ${JSON.stringify(statuses)}`)
}

/** Two ordinary clients, each logging in again as soon as its last login answered, until `until` settles. */
const ordinaryTraffic = async (until: Promise<unknown>) => {
  const state = { done: false }
  until.then(() => { state.done = true }, () => { state.done = true })
  const results: Array<{ status: number, ms: number }> = []
  await Promise.all([0, 1].map(async (client) => {
    for (let i = 0; !state.done; i++) results.push(await login(ordinary[(client + 2 * i) % ordinary.length]!))
  }))
  return results
}

const loop = monitorEventLoopDelay({ resolution: 10 })
// Warm-up, then ordinary logins alone for 3 seconds.
for (const name of ordinary) await login(name)
loop.enable()
summary('ordinary logins alone', await ordinaryTraffic(new Promise((resolve) => setTimeout(resolve, 3000))))
console.log(`event loop delay: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`)

loop.reset()
const started = performance.now()
const wave = Promise.all(imported.map(login))
const during = await ordinaryTraffic(wave)
const firstLogins = await wave
console.log(`\n${burst} first logins of imported users (PBKDF2 ${iterations}) at once: all answered in ${(performance.now() - started).toFixed(0)} ms`)
summary('imported users\' first logins', firstLogins)
summary('ordinary logins meanwhile', during)
console.log(`event loop delay: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`)

await server.close()
rmSync(dir, { recursive: true, force: true })
