import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import postgres from 'postgres'
import type { Test } from 'tap'
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import app from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openPglite } from '../src/db/pglite.js'
import { migrationsFolder } from '../src/paths.js'
import { serverOptions } from '../src/options.js'

export const postgresUrl = process.env.DATABASE_URL

// The old Django + SimpleJWT service's folder, for the import and move-in tests; the bench finds it the same way.
export { djangoServiceDir } from '../bench/peer-django.js'
/** The machine's Redis, which .ci/run starts when it is down. */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A connection to the machine's Redis and a key prefix of the test's own; its keys go when the test ends. */
export function testRedis (t: Test): { redis: Redis, prefix: string } {
  const redis = new Redis(redisUrl)
  const prefix = `auth-test:${randomBytes(4).toString('hex')}:`
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
  return { redis, prefix }
}

/**
 * A fresh database of its own on the PostgreSQL server at baseUrl, dropped when the test ends,
 * so test files running in parallel never see each other's rows: empty, or a copy of a template database.
 */
export async function freshDatabase (t: Test, baseUrl: string, template?: string): Promise<string> {
  const name = `auth_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"${template === undefined ? '' : ` template "${template}"`}`)
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`)
    await admin.end()
  })
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Where the tests' data dirs and the PGlite template go: memory (/dev/shm) where it has room, else the system's
 * temporary directory. Every build() copies a 40 MB PGlite database and removes it at the end: on a disk that costs
 * about a second, in memory a tenth of that. The files are the same, and so is what PGlite does with them.
 */
const scratch = (() => {
  try {
    const { bavail, bsize } = statfsSync('/dev/shm')
    if (bavail * bsize >= 2 * 1024 ** 3) return '/dev/shm'
  } catch {}
  return tmpdir()
})()

/**
 * A directory of the test's own, removed by a teardown registered now, so that it runs after the teardowns of
 * whatever uses it: tap removes t.testdir() when the test ends, before its teardowns, while an app not yet
 * closed may still write there (a mail file).
 */
export function dataDir (t: Test): string {
  const dir = mkdtempSync(join(scratch, 'auth-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

let migrationsDigest: string | undefined
/** A digest of drizzle/, which names the migrated templates below: a new migration makes new ones. */
function digestOfMigrations (): string {
  if (migrationsDigest !== undefined) return migrationsDigest
  const digest = createHash('sha256')
  const files = readdirSync(migrationsFolder, { recursive: true, encoding: 'utf8' }).sort()
  for (const file of files) digest.update(file).update(file.endsWith('.sql') || file.endsWith('.json') ? readFileSync(join(migrationsFolder, file)) : '')
  migrationsDigest = digest.digest('hex').slice(0, 16)
  return migrationsDigest
}

let pgliteTemplate: Promise<string> | undefined
/**
 * A PGlite database with every migration applied, made once for each version of the migrations and shared by the
 * test processes (in the scratch directory above, named by a digest of drizzle/): creating a database and
 * migrating it costs seconds, copying it tens of milliseconds.
 */
function migratedPglite (): Promise<string> {
  pgliteTemplate ??= (async () => {
    const template = join(scratch, `auth-test-pglite-${digestOfMigrations()}`)
    if (existsSync(template)) return template
    const building = mkdtempSync(join(scratch, 'auth-test-pglite-building-'))
    await (await openPglite(building)).close()
    try {
      renameSync(building, template)
    } catch {
      // Another test process made it meanwhile.
      rmSync(building, { recursive: true, force: true })
    }
    return template
  })()
  return pgliteTemplate
}

let postgresTemplate: Promise<string> | undefined
/**
 * PostgreSQL's counterpart of migratedPglite: a database with every migration applied, kept on the server for each
 * version of the migrations, which CREATE DATABASE … TEMPLATE copies faster than the app migrates an empty one.
 * Built under a name of its own and renamed when done, so that a test process never copies a half-migrated one;
 * nothing stays connected to it, as a template must not have connections while it is copied.
 */
function migratedPostgres (baseUrl: string): Promise<string> {
  postgresTemplate ??= (async () => {
    const template = `auth_test_template_${digestOfMigrations()}`
    const admin = postgres(baseUrl, { max: 1, onnotice: () => {} })
    try {
      const exists = async () => (await admin`select 1 from pg_database where datname = ${template}`).length > 0
      if (await exists()) return template
      const building = `auth_test_building_${process.pid}_${randomBytes(4).toString('hex')}`
      await admin.unsafe(`create database "${building}"`)
      const url = new URL(baseUrl)
      url.pathname = `/${building}`
      const { openPostgres } = await import('../src/db/postgres.js')
      await (await openPostgres(url.toString(), 1)).close()
      for (let attempt = 1; ; attempt++) {
        try {
          await admin.unsafe(`alter database "${building}" rename to "${template}"`)
          return template
        } catch (error) {
          // Another test process made it meanwhile; or the backend of the migrating connection has not exited yet.
          if (await exists()) {
            await admin.unsafe(`drop database if exists "${building}" with (force)`)
            return template
          }
          if (attempt === 50) throw error
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
    } finally {
      await admin.end()
    }
  })()
  return postgresTemplate
}

/**
 * The environment of a test instance: its own data dir, and its own database: on PostgreSQL a new one, on PGlite a
 * copy of a migrated one in the data dir (unless the test brings its DATA_DIR).
 */
export async function testEnvironment (t: Test, overrides: Record<string, string> = {}): Promise<Record<string, string>> {
  // Limits off unless a test turns them on: most tests log in and register far more than a client may.
  const environment: Record<string, string> = { DATA_DIR: dataDir(t), LOG_LEVEL: 'silent', RATE_LIMIT: 'off', ...overrides }
  if (postgresUrl !== undefined && environment.DATABASE_URL === undefined) {
    environment.DATABASE_URL = await freshDatabase(t, postgresUrl, await migratedPostgres(postgresUrl))
  }
  if (environment.DATABASE_URL === undefined && overrides.DATA_DIR === undefined) {
    cpSync(join(await migratedPglite(), 'pglite'), join(environment.DATA_DIR!, 'pglite'), { recursive: true })
  }
  return environment
}

/**
 * Checks every answer of the server against the schema its route documents for that status (what
 * /openapi.json publishes): collects each status a route does not document, and each body that does not
 * match. build() fails the test whose app answered any, so the whole suite doubles as a conformance test.
 */
export function undocumentedAnswers (server: FastifyInstance): Set<string> {
  const mismatches = new Set<string>()
  server.addHook('onSend', (request, reply, payload, done) => {
    const schema = request.routeOptions.schema as { hide?: boolean, response?: Record<string, TSchema> } | undefined
    // Unknown routes, and the hidden ones (/metrics, /docs, /openapi.json), document nothing.
    if (schema === undefined || schema.hide === true || request.method === 'HEAD') return done()
    const route = `${request.method} ${request.routeOptions.url} ${reply.statusCode}`
    const documented = schema.response?.[String(reply.statusCode)]
    if (documented === undefined) {
      mismatches.add(`${route}: a status the route does not document`)
    } else {
      const body = payload === '' || payload === undefined || payload === null ? null : JSON.parse(String(payload))
      if (!Value.Check(documented, body)) mismatches.add(`${route}: ${JSON.stringify(body).slice(0, 300)}`)
    }
    done()
  })
  return mismatches
}

/** The app with the production options, ready for inject(), closed when the test ends. */
export async function build (t: Test, environment?: Record<string, string>): Promise<FastifyInstance> {
  const config = loadConfig(environment ?? await testEnvironment(t))
  const server = Fastify(serverOptions(config))
  const undocumented = undocumentedAnswers(server)
  t.teardown(() => {
    if (undocumented.size > 0) throw new Error(`answers that do not match their documented schema:\n${[...undocumented].join('\n')}`)
  })
  await server.register(fp(app), { config })
  await server.ready()
  // tap runs teardowns last-in first-out: the server closes before its database is dropped.
  t.teardown(() => server.close())
  return server
}

let counter = 0
/** A registration body no other test in this process uses. */
export function newUser (overrides: Partial<{ username: string, email: string, password: string }> = {}) {
  const id = `${process.pid}x${++counter}`
  return { username: `user${id}`, email: `person${id}@example.com`, password: 'correct horse battery', ...overrides }
}

export async function registerAndLogin (server: FastifyInstance, body = newUser()) {
  const registered = await server.inject({ method: 'POST', url: '/auth/register/', payload: body })
  const login = await server.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })
  return { body, user: registered.json(), tokens: login.json() as { access: string, refresh: string, access_expires_at: string, refresh_expires_at: string } }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** The decoded claims of a JWT, without verifying it. */
export function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())
}

/** Closes the app's database client under the running app, as a database outage would. */
export async function closeDatabase (app: FastifyInstance): Promise<void> {
  const client = (app.db as unknown as { $client: { close?: () => Promise<void>, end?: () => Promise<void> } }).$client
  // postgres.js: end() for good (its close() reconnects on the next query); PGlite: close().
  await (client.end ?? client.close)!.call(client)
}

/** The calls a t.capture() has seen, waiting up to ms for the first; each read hands over what came since the last. */
export async function capturedWithin<T> (captured: () => T[], ms: number): Promise<T[]> {
  const deadline = Date.now() + ms
  let calls = captured()
  while (calls.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    calls = captured()
  }
  return calls
}
