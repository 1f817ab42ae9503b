import { fork, type ChildProcess } from 'node:child_process'
import { createPrivateKey, createPublicKey, randomBytes, randomUUID, sign } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import postgres from 'postgres'
import { privateKeyFile } from '../src/keys.js'
import { packageJson } from '../src/paths.js'
import type { GrowthReport } from './growth.js'
import type { Measured } from './loop.js'
import { chainedRefresh, djangoRefreshScenario, djangoUnavailable, peerConnections, startDjango } from './peer-django.js'

export type Mode = 'smoke' | 'quick' | 'full'

export interface BenchOptions {
  mode: Mode
  /** A PostgreSQL server: the bench makes a scratch database on it and drops it afterwards. */
  databaseUrl?: string
  /** Only the scenarios whose name contains this, for working on one of them. */
  only?: string
  /** Progress lines, for a person watching. */
  log?: (line: string) => void
  /** Also drive the old service with the same load: skipped, with a line in the log, where it cannot run. */
  peer?: 'django'
  /** The Python of the old service; /usr/bin/python3 by default. */
  python?: string
  /** PostgreSQL only: after a first pass, fill the database with this many token rows and measure again (bench/growth.ts). */
  tokenRows?: number
}

/** A run lasts this many seconds, unless it is given an amount of requests to make. */
export interface Length {
  seconds: number
  amount?: number
}

export interface Plan {
  /** Measured runs of each scenario and of its ceiling, alternating. */
  runs: number
  length: Length
  warmup: Length
  /** Distinct access tokens of the token-pool scenario. */
  tokenPool: number
  /** Distinct access tokens of the never-seen scenario: more than the service's verified-token cache holds. */
  freshTokens: number
  /** Users the login scenario spreads over. */
  loginUsers: number
}

export const plans: Record<Mode, Plan> = {
  // Enough requests to prove that every scenario runs without errors, few enough that the test suite, which runs it, stays quick.
  smoke: { runs: 1, length: { seconds: 60, amount: 50 }, warmup: { seconds: 60, amount: 20 }, tokenPool: 300, freshTokens: 1000, loginUsers: 10 },
  quick: { runs: 3, length: { seconds: 2 }, warmup: { seconds: 1 }, tokenPool: 10_000, freshTokens: 100_000, loginUsers: 100 },
  full: { runs: 5, length: { seconds: 6 }, warmup: { seconds: 2 }, tokenPool: 10_000, freshTokens: 100_000, loginUsers: 100 }
}

export interface Row {
  scenario: string
  /** Requests per second, the median of the runs. */
  rate: number
  p50: number
  p99: number
  errors: number
  ceiling: string
  ceilingRate: number
  ratio: number
  /** The least ratio that passes. */
  goal: number
  /** The goal is met, with no errors. */
  pass: boolean
}

export interface Report {
  mode: Mode
  database: 'PGlite' | 'PostgreSQL'
  machine: { cpu: string, cores: number, node: string }
  rows: Row[]
  /** Milliseconds: the worst p99 of the service's event-loop delay over the login runs. */
  eventLoopDelayP99: number
  /** Bytes: the service's peak resident set over the whole run. */
  peakRss: number
  /** Bytes: on PGlite, the embedded database's own resident size at idle, which the RSS limit allows on top. */
  embeddedDatabase?: number
  limits: { eventLoopDelayP99: number, peakRss: number }
  /** With tokenRows: the fill, the sizes and the purge under load. */
  growth?: GrowthReport
  pass: boolean
}

// The service computes HASH_CONCURRENCY hashes at once (one per core by default), with a queue
// behind them: twice as many connections keep every slot busy while the others do their database
// work. The argon2 ceilings run exactly HASH_CONCURRENCY hashes in flight.
const hashSlots = cpus().length
const connections = { http: 10, hashing: 2 * hashSlots }
const password = 'correct horse battery staple'
const here = new URL('.', import.meta.url)
// Run from dist as JavaScript, or from src under the test runner's TypeScript loader.
/* c8 ignore next: the suite runs the TypeScript */
const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** The environment of a child: no coverage collection of its own. */
function childEnvironment (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  return { ...inherited, ...extra }
}

function forkChild (module: string, args: string[], extra?: Record<string, string>, flags: string[] = []): ChildProcess {
  return fork(new URL(`${module}${extension}`, here), args, { env: childEnvironment(extra), execArgv: [...process.execArgv, ...flags], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
}

/**
 * The Node.js flags of package.json's start script (`node <flags> dist/src/server.js`): the service is measured
 * as `npm start` runs it, and its ceilings without them.
 */
export async function startFlags (): Promise<string[]> {
  const { scripts } = JSON.parse(await readFile(packageJson, 'utf8')) as { scripts: { start: string } }
  const words = scripts.start.split(/\s+/)
  return words.slice(words.indexOf('node') + 1).filter((word) => word.startsWith('--'))
}

/** The first message of a child, or its failure. */
function firstMessage<T> (child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => { child.off('exit', onExit); resolve(message as T) }
    /* c8 ignore next: only a child that dies before it answers */
    const onExit = (code: number | null) => { child.off('message', onMessage); reject(new Error(`${child.spawnargs.join(' ')} exited with ${code}`)) }
    child.once('message', onMessage)
    child.once('exit', onExit)
  })
}

async function startServer (module: string, args: string[], extra?: Record<string, string>, flags?: string[]) {
  const child = forkChild(module, args, extra, flags)
  const { port } = await firstMessage<{ port: number }>(child)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    ask: <T>(command: string) => { const answer = firstMessage<T>(child); child.send({ command }); return answer },
    stop: async () => { child.disconnect(); await exited }
  }
}

/**
 * The answer of a child process of its own: a ceiling run, or a measurement. It waits for the child to exit, not just for its answer:
 * a child still running when the test process ends loses its coverage report.
 */
async function childAnswer<T> (module: string, options: object): Promise<T> {
  const child = forkChild(module, [JSON.stringify(options)])
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const answer = await firstMessage<T>(child)
  await exited
  return answer
}
const ceilingRun = (module: string, options: object) => childAnswer<Measured>(module, options)

async function post<T> (url: string, body: object): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  /* c8 ignore next: only a broken service fails a setup request */
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`)
  return await response.json() as T
}

/** Runs each job with at most `limit` at once. */
async function pool<T> (jobs: number, limit: number, job: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, jobs) }, async () => {
    while (next < jobs) {
      const index = next++
      results[index] = await job(index)
    }
  }))
  return results
}

export function measuredOf (result: autocannon.Result): Measured {
  const errors = result.errors + result.non2xx
  return {
    operations: result.requests.total,
    errors,
    seconds: result.duration,
    rate: (result.requests.total - result.non2xx) / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99
  }
}

export type Load = Omit<autocannon.Options, 'url' | 'duration' | 'amount'>

async function cannon (url: string, load: Load, { seconds, amount }: Length): Promise<Measured> {
  return measuredOf(await autocannon({ url, pipelining: 1, duration: seconds, amount, ...load }))
}

export interface Scenario {
  name: string
  ceiling: string
  goal: number
  /** Load for one run of the service; called before each run. */
  target: () => Promise<{ load: Load, path: string }>
  /** One run of the ceiling. */
  ceilingRun: (length: Length) => Promise<Measured>
}

export async function runBench ({ mode, only, databaseUrl, log = () => {}, peer, python, tokenRows }: BenchOptions): Promise<Report> {
  const plan = plans[mode]
  if (tokenRows !== undefined && databaseUrl === undefined) throw new Error('--rows: PostgreSQL only, set DATABASE_URL')
  const names = {
    oneToken: 'GET /auth/me/, one token',
    tokenPool: `GET /auth/me/, ${plan.tokenPool.toLocaleString('en')} tokens`,
    fresh: 'GET /auth/me/, tokens never seen',
    login: `POST /auth/login/, ${plan.loginUsers} users`,
    register: 'POST /auth/register/, new users',
    refresh: 'POST /auth/refresh/, chained'
  }
  // Every scenario this run may have, checked against --only before the setup, which takes a while.
  /* c8 ignore next: refresh is PostgreSQL only */
  const possible = [names.oneToken, names.tokenPool, names.fresh, names.login, names.register, ...(databaseUrl === undefined ? [] : [names.refresh]), ...(peer === 'django' ? [djangoRefreshScenario] : [])]
  if (only !== undefined && !possible.some((name) => name.includes(only))) throw new Error(`--only ${only}: no scenario's name contains it`)
  const cleanups: Array<() => Promise<unknown>> = []
  try {
    const environment: Record<string, string> = { PORT: '0', HOST: '127.0.0.1', RATE_LIMIT: 'off', PURGE_INTERVAL: '0' }
    const dataDir = await mkdtemp(join(tmpdir(), 'auth-bench-'))
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
    environment.DATA_DIR = dataDir
    /* c8 ignore next: the suite's PostgreSQL run takes it; its PGlite run must pass without a server */
    if (databaseUrl !== undefined) environment.DATABASE_URL = await scratchDatabase(databaseUrl, cleanups)
    /* c8 ignore next: with --rows only, on PostgreSQL. The fill takes minutes: the first pass's tokens must outlive it. */
    if (tokenRows !== undefined) environment.ACCESS_TOKEN_TTL = '1d'
    const poolSize = 10
    environment.DATABASE_POOL_SIZE = String(poolSize)

    // As an operator deploys: migrations first, so the service's peak memory is its own (PGlite's
    // initdb of a new database briefly takes several hundred MB, in that process).
    log('migrating the database')
    const migrated = forkChild('../src/cli/db-migrate', [], environment)
    const migrateCode = await new Promise((resolve) => migrated.once('exit', resolve))
    /* c8 ignore next: only a database that cannot be migrated fails here */
    if (migrateCode !== 0) throw new Error(`migrating the database failed with ${migrateCode}`)

    /* c8 ignore next */
    const database = databaseUrl === undefined ? 'PGlite' : 'PostgreSQL'
    let embeddedDatabase: number | undefined
    if (database === 'PGlite') {
      log('measuring the embedded database at idle')
      embeddedDatabase = (await childAnswer<{ bytes: number }>('pglite-size', { dataDir })).bytes
    }
    log(`starting the service on ${database}`)
    const service = await startServer('service', [], environment, await startFlags())
    cleanups.unshift(service.stop)
    const api = (path: string) => `${service.url}${path}`

    log(`registering ${plan.loginUsers} users`)
    const run = randomBytes(3).toString('hex')
    const users = await pool(plan.loginUsers, connections.hashing, async (index) => {
      const user = { username: `bench${run}u${index}`, email: `bench${run}u${index}@example.com`, password }
      await post(api('/auth/register/'), user)
      return user
    })
    const login = (index: number) => post<{ access: string, refresh: string }>(api('/auth/login/'), { username: users[index % users.length]!.username, password })
    const first = await login(0)
    const me = await (await fetch(api('/auth/me/'), { headers: { authorization: `Bearer ${first.access}` } })).json()

    log(`signing ${plan.tokenPool} access tokens`)
    const accessTokens: string[] = []
    const chains = await pool(connections.http, connections.hashing, login)
    await pool(connections.http, connections.http, async (index) => {
      let refresh = chains[index]!.refresh
      while (accessTokens.length < plan.tokenPool) {
        const pair = await post<{ access: string, refresh: string }>(api('/auth/refresh/'), { refresh })
        accessTokens.push(pair.access)
        refresh = pair.refresh
      }
    })

    // Tokens the service has never verified: signed here with its own key, with the claims of a real access token and
    // a jti of their own. The service's cache (TOKEN_CACHE_SIZE, 10,000 by default) is smaller than the pool, which
    // is presented in turn, so every presentation is the first the cache knows of.
    log(`signing ${plan.freshTokens} more access tokens with the service's key`)
    const privateKey = createPrivateKey(await readFile(join(dataDir, privateKeyFile)))
    const [header] = first.access.split('.')
    const claims = JSON.parse(Buffer.from(first.access.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
    const freshTokens = Array.from({ length: plan.freshTokens }, () => {
      const input = `${header}.${Buffer.from(JSON.stringify({ ...claims, jti: randomUUID() })).toString('base64url')}`
      return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
    })

    const bare = await startServer('bare', [JSON.stringify({ body: me })])
    cleanups.unshift(bare.stop)
    const verifying = await startServer('bare', [JSON.stringify({ body: me, publicKey: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }) })])
    cleanups.unshift(verifying.stop)
    // The same requests as the service gets, Authorization header included, built the same way: a request
    // built anew each time costs autocannon, on the same two cores, more than a fixed one.
    const bareRun = (load: Load, length: Length) => cannon(`${bare.url}/auth/me/`, load, length)
    const oneToken: Load = { connections: connections.http, headers: { authorization: `Bearer ${first.access}` } }
    // The returning clients, in random order.
    const tokenPool = (): Load => ({
      connections: connections.http,
      requests: [{ setupRequest: (request) => ({ ...request, headers: { authorization: `Bearer ${accessTokens[Math.floor(Math.random() * accessTokens.length)]}` } }) }]
    })
    let nextFresh = 0
    const fresh = (): Load => ({
      connections: connections.http,
      requests: [{ setupRequest: (request) => ({ ...request, headers: { authorization: `Bearer ${freshTokens[nextFresh++ % freshTokens.length]}` } }) }]
    })
    const hashing = { connections: connections.hashing }

    let loginUser = 0
    let registered = 0
    const scenarios: Scenario[] = [
      {
        name: names.oneToken,
        ceiling: 'bare Fastify route',
        goal: 0.75,
        target: async () => ({ path: '/auth/me/', load: oneToken }),
        ceilingRun: (length) => bareRun(oneToken, length)
      },
      {
        name: names.tokenPool,
        ceiling: 'bare Fastify route',
        goal: 0.6,
        target: async () => ({ path: '/auth/me/', load: tokenPool() }),
        ceilingRun: (length) => bareRun(tokenPool(), length)
      },
      {
        name: names.fresh,
        ceiling: 'bare route verifying Ed25519',
        goal: 0.9,
        target: async () => ({ path: '/auth/me/', load: fresh() }),
        ceilingRun: (length) => cannon(`${verifying.url}/auth/me/`, fresh(), length)
      },
      {
        name: names.login,
        ceiling: 'argon2id verify',
        goal: 0.85,
        target: async () => ({
          path: '/auth/login/',
          load: {
            ...hashing,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            requests: [{ setupRequest: (request) => ({ ...request, body: JSON.stringify({ username: users[loginUser++ % users.length]!.username, password }) }) }]
          }
        }),
        ceilingRun: (length) => ceilingRun('argon2', { kind: 'verify', inFlight: hashSlots, ...length })
      },
      {
        name: names.register,
        ceiling: 'argon2id hash',
        goal: 0.8,
        target: async () => ({
          path: '/auth/register/',
          load: {
            ...hashing,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            requests: [{
              setupRequest: (request) => {
                const name = `bench${run}r${registered++}`
                return { ...request, body: JSON.stringify({ username: name, email: `${name}@example.com`, password }) }
              }
            }]
          }
        }),
        ceilingRun: (length) => ceilingRun('argon2', { kind: 'hash', inFlight: hashSlots, ...length })
      }
    ]

    /* c8 ignore start: measured on PostgreSQL only, in the suite's PostgreSQL run */
    if (databaseUrl !== undefined) {
      scenarios.push({
        name: names.refresh,
        ceiling: 'refresh SQL in postgres.js',
        goal: 0.8,
        target: async () => {
          // Sessions enough for every connection; each answer's refresh token goes back for the next request.
          const free = (await pool(2 * connections.http, connections.hashing, login)).map((pair) => pair.refresh)
          return {
            path: '/auth/refresh/',
            load: {
              connections: connections.http,
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              requests: [{
                setupRequest: (request) => ({ ...request, body: JSON.stringify({ refresh: free.shift() }) }),
                onResponse: (status, body) => { if (status === 200) free.push((JSON.parse(body) as { refresh: string }).refresh) }
              }]
            }
          }
        },
        ceilingRun: (length) => ceilingRun('refresh-sql', { databaseUrl: environment.DATABASE_URL, poolSize, inFlight: connections.http, ...length })
      })
    }
    /* c8 ignore stop */

    if (peer === 'django') {
      const unavailable = await djangoUnavailable(databaseUrl, python)
      if (unavailable !== undefined) log(`skipped: the comparison with the old Django service: ${unavailable}`)
      /* c8 ignore start: the suite's PostgreSQL run only */
      else if (only === undefined || djangoRefreshScenario.includes(only)) {
        const djangoDatabase = await scratchDatabase(databaseUrl!, cleanups)
        log(`starting the old Django service on database ${new URL(djangoDatabase).pathname.slice(1)}`)
        // A smoke run makes fewer requests than that many connections, which autocannon refuses.
        const chains = Math.min(peerConnections, plan.warmup.amount ?? peerConnections)
        // The warm-up and each measured run start with fresh chains, two per connection, as the service's.
        const django = await startDjango(djangoDatabase, (plan.runs + 1) * 2 * chains, cleanups, python)
        scenarios.push({
          name: djangoRefreshScenario,
          ceiling: 'Django + SimpleJWT, gunicorn -w 4',
          goal: 5,
          target: async () => {
            const free = (await pool(2 * chains, connections.hashing, login)).map((pair) => pair.refresh)
            return { path: '/auth/refresh/', load: chainedRefresh(free, chains).load }
          },
          ceilingRun: async (length) => {
            const { load, resets } = chainedRefresh(django.refreshTokens.splice(0, 2 * chains), chains)
            const measured = await cannon(`${django.url}/auth/refresh/`, load, length)
            return { ...measured, errors: measured.errors - resets() }
          }
        })
      }
      /* c8 ignore stop */
    }

    const rows: Row[] = []
    let eventLoopDelayP99 = 0
    const chosen = scenarios.filter((candidate) => only === undefined || candidate.name.includes(only))
    /* c8 ignore next: only --only on the old service's scenario, where it cannot run */
    if (chosen.length === 0) throw new Error(`--only ${only}: no scenario's name contains it`)
    for (const scenario of chosen) {
      log(`${scenario.name}: warming up`)
      const warm = await scenario.target()
      await cannon(api(warm.path), warm.load, plan.warmup)
      await scenario.ceilingRun(plan.warmup)
      const targets: Measured[] = []
      const ceilings: Measured[] = []
      for (let i = 0; i < plan.runs; i++) {
        const { path, load } = await scenario.target()
        await service.ask('reset')
        targets.push(await cannon(api(path), load, plan.length))
        const { eventLoopDelayP99: delay, rss, peakRss, cpu, heapUsed, heapTotal, external } = await service.ask<{ eventLoopDelayP99: number, rss: number, peakRss: number, cpu: number, heapUsed: number, heapTotal: number, external: number }>('stats')
        if (path === '/auth/login/') eventLoopDelayP99 = Math.max(eventLoopDelayP99, delay)
        ceilings.push(await scenario.ceilingRun(plan.length))
        const served = targets.at(-1)!
        log(`${scenario.name}: run ${i + 1}/${plan.runs}: ${served.rate.toFixed(0)} req/s against ${ceilings.at(-1)!.rate.toFixed(0)}; service CPU ${(cpu / served.operations).toFixed(0)} µs a request, RSS ${mb(rss)} (heap ${mb(heapUsed)} used of ${mb(heapTotal)}, external ${mb(external)}), peak ${mb(peakRss)}`)
      }
      const rate = median(targets.map((measured) => measured.rate))
      const typical = targets.find((measured) => measured.rate === rate)!
      const ceilingRate = median(ceilings.map((measured) => measured.rate))
      const ratio = rate / ceilingRate
      const errors = [...targets, ...ceilings].reduce((sum, measured) => sum + measured.errors, 0)
      rows.push({
        scenario: scenario.name,
        rate,
        p50: typical.p50,
        p99: typical.p99,
        errors,
        ceiling: scenario.ceiling,
        ceilingRate,
        ratio,
        goal: scenario.goal,
        pass: ratio >= scenario.goal && errors === 0
      })
    }
    /* c8 ignore start: PostgreSQL only (test/bench/growth.test.ts) */
    let growth: GrowthReport | undefined
    let growthPass = true
    if (tokenRows !== undefined) {
      const { measureGrowth } = await import('./growth.js')
      const refresh = scenarios.find((scenario) => scenario.name.includes('/auth/refresh/'))!
      const grown = await measureGrowth({ databaseUrl: environment.DATABASE_URL!, rows: tokenRows, plan, scenarios: chosen, before: rows, refresh, run: (path, load, length) => cannon(api(path), load, length), url: api, environment, log })
      rows.push(...grown.rows)
      growth = grown.growth
      growthPass = growth.pass
    }
    /* c8 ignore stop */
    const { peakRss } = await service.ask<{ peakRss: number }>('stats')
    /* c8 ignore next: 0 is PostgreSQL's, which the suite's PGlite run never reaches */
    const limits = { eventLoopDelayP99: 50, peakRss: 256 * 1024 * 1024 + (embeddedDatabase ?? 0) }
    return {
      mode,
      database,
      machine: { cpu: cpus()[0]!.model.trim(), cores: cpus().length, node: process.version },
      rows,
      eventLoopDelayP99,
      peakRss,
      embeddedDatabase,
      limits,
      growth,
      pass: [rows.every((row) => row.pass), eventLoopDelayP99 < limits.eventLoopDelayP99, peakRss <= limits.peakRss, growthPass].every(Boolean)
    }
  } finally {
    for (const cleanup of cleanups) await cleanup()
  }
}

/* c8 ignore start: the suite's PostgreSQL run only */
/** A database of its own on the server, so runs never measure each other's rows. */
async function scratchDatabase (baseUrl: string, cleanups: Array<() => Promise<unknown>>): Promise<string> {
  const name = `auth_bench_${randomBytes(4).toString('hex')}`
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  cleanups.push(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`)
    await admin.end()
  })
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return url.toString()
}
/* c8 ignore stop */

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
const verdict = (pass: boolean) => pass ? 'pass' : '**fail**'

/** The report as one Markdown table, with the machine above it. */
export function markdown (report: Report): string {
  const { machine } = report
  const lines = [
    `${report.database}, ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${report.mode} run`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | errors | ceiling | ceiling req/s | ratio | goal | result |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|---|',
    ...report.rows.map((row) => `| ${row.scenario} | ${row.rate.toFixed(0)} | ${row.p50} | ${row.p99} | ${row.errors} | ${row.ceiling} | ${row.ceilingRate.toFixed(0)} | ${(row.ratio * 100).toFixed(0)}% | ≥ ${row.goal * 100}% | ${verdict(row.pass)} |`),
    `| event-loop delay p99 while logins are saturated | | | ${report.eventLoopDelayP99.toFixed(1)} | | | | | < ${report.limits.eventLoopDelayP99} ms | ${verdict(report.eventLoopDelayP99 < report.limits.eventLoopDelayP99)} |`,
    `| peak RSS of the service${report.embeddedDatabase === undefined ? '' : `, PGlite's ${mb(report.embeddedDatabase)} at idle included`} | ${mb(report.peakRss)} | | | | | | | ≤ ${mb(report.limits.peakRss)} | ${verdict(report.peakRss <= report.limits.peakRss)} |`
  ]
  return lines.join('\n')
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Each scenario as a bar against its ceiling (the full width), with its goal marked. */
export function chart (report: Report): string {
  const width = 760
  const left = 260
  const barWidth = width - left - 120
  const rowHeight = 54
  const height = 50 + report.rows.length * rowHeight
  const bars = report.rows.map((row, index) => {
    const y = 40 + index * rowHeight
    const filled = Math.min(row.ratio, 1.2) * barWidth
    const colour = row.pass ? '#2e7d32' : '#c62828'
    return [
      `<text x="${left - 10}" y="${y + 14}" text-anchor="end">${escape(row.scenario)}</text>`,
      `<text x="${left - 10}" y="${y + 30}" text-anchor="end" class="small">vs ${escape(row.ceiling)}</text>`,
      `<rect x="${left}" y="${y}" width="${barWidth}" height="16" fill="#cfd8dc"/>`,
      `<rect x="${left}" y="${y + 18}" width="${filled.toFixed(1)}" height="16" fill="${colour}"/>`,
      `<line x1="${(left + row.goal * barWidth).toFixed(1)}" x2="${(left + row.goal * barWidth).toFixed(1)}" y1="${y - 3}" y2="${y + 37}" stroke="#000" stroke-dasharray="3,2"/>`,
      `<text x="${left + barWidth + 8}" y="${y + 13}" class="small">${row.ceilingRate.toFixed(0)} req/s</text>`,
      `<text x="${left + barWidth + 8}" y="${y + 31}" class="small">${row.rate.toFixed(0)} req/s (${(row.ratio * 100).toFixed(0)}%)</text>`
    ].join('\n')
  })
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    '<style>.small { font-size: 11px; fill: #444 }</style>',
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-weight="bold">req/s against the ceiling (grey: ceiling, colour: service, dashed: goal), ${report.database}</text>`,
    ...bars,
    '</svg>'
  ].join('\n')
}
