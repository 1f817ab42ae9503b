// `npm run bench -- --rows <N>` (PostgreSQL only): after the first pass over the scenarios on the empty database,
// fills it with N token rows (bench/fill.ts), prints the sizes, runs the scenarios again against the first pass's
// figures, then measures the refresh latency while `npm run db:purge` deletes the expired rows.
import { fork } from 'node:child_process'
import autocannon from 'autocannon'
import postgres from 'postgres'
import { census, fill, relationSizes, type Census, type Filled, type RelationSize } from './fill.js'
import { measuredOf, type Length, type Load, type Plan, type Row, type Scenario } from './harness.js'
import type { Measured } from './loop.js'

export interface GrowthContext {
  databaseUrl: string
  rows: number
  plan: Plan
  /** The scenarios of the first pass, and its rows. */
  scenarios: Scenario[]
  before: Row[]
  /** The refresh scenario, chosen or not: the purge is measured under its load. */
  refresh: Scenario
  /** One run against the service. */
  run: (path: string, load: Load, length: Length) => Promise<Measured>
  url: (path: string) => string
  /** The service's environment, for the purge's process. */
  environment: Record<string, string>
  log: (line: string) => void
}

export interface PurgeUnderLoad {
  /** Token rows expired when the purge started, and left after it. */
  expiredBefore: number
  expiredAfter: number
  /** What `npm run db:purge` printed. */
  output: string
  seconds: number
  /** Refresh load before the purge, and while it ran. */
  without: Measured
  during: Measured
  limits: { p99Factor: number, seconds: number }
  pass: boolean
}

export interface GrowthReport {
  filled: Filled
  census: Census[]
  sizes: RelationSize[]
  purge: PurgeUnderLoad
  pass: boolean
}

const goal = 0.8
const limits = { p99Factor: 2, seconds: 600 }
const here = new URL('.', import.meta.url)
/* c8 ignore next: the suite runs the TypeScript */
const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** Fills, measures the scenarios again, then the purge under load: rows for the report's table, and the rest. */
export async function measureGrowth (context: GrowthContext): Promise<{ rows: Row[], growth: GrowthReport }> {
  const { databaseUrl, rows, plan, log } = context
  const sql = postgres(databaseUrl, { max: 1 })
  try {
    log(`filling the database with ${rows.toLocaleString('en')} token rows`)
    const filled = await fill(sql, rows, log)
    log(`filled in ${filled.insertSeconds.toFixed(0)} s, then VACUUM ANALYZE in ${filled.vacuumSeconds.toFixed(0)} s`)
    const counted = await census(sql, filled.now)
    const sizes = await relationSizes(sql)
    for (const line of sizeTable(sizes)) log(line)

    const grown: Row[] = []
    const label = `${filled.tokens.toLocaleString('en')} token rows`
    for (const scenario of context.scenarios.filter((candidate) => !candidate.name.includes('register'))) {
      const empty = context.before.find((row) => row.scenario === scenario.name)!
      const warm = await scenario.target()
      await context.run(warm.path, warm.load, plan.warmup)
      const targets: Measured[] = []
      const ceilings: Measured[] = []
      for (let i = 0; i < plan.runs; i++) {
        const { path, load } = await scenario.target()
        targets.push(await context.run(path, load, plan.length))
        // The ceiling again, as in the first pass: how far the machine itself drifted between the passes.
        ceilings.push(await scenario.ceilingRun(plan.length))
        log(`${scenario.name}, ${label}: run ${i + 1}/${plan.runs}: ${targets.at(-1)!.rate.toFixed(0)} req/s`)
      }
      const rate = median(targets.map((measured) => measured.rate))
      const typical = targets.find((measured) => measured.rate === rate)!
      const drift = median(ceilings.map((measured) => measured.rate)) / empty.ceilingRate
      log(`${scenario.name}, ${label}: ${rate.toFixed(0)} req/s against ${empty.rate.toFixed(0)} empty; its ceiling moved by ${((drift - 1) * 100).toFixed(0)}% between the passes`)
      const errors = targets.reduce((sum, measured) => sum + measured.errors, 0)
      const ratio = rate / empty.rate
      grown.push({ scenario: `${scenario.name}, ${label}`, rate, p50: typical.p50, p99: typical.p99, errors, ceiling: 'empty database', ceilingRate: empty.rate, ratio, goal, pass: [ratio >= goal, errors === 0].every(Boolean) })
    }

    const purge = await purgeUnderLoad(context, sql)
    return { rows: grown, growth: { filled, census: counted, sizes, purge, pass: purge.pass } }
  } finally {
    await sql.end()
  }
}

async function purgeUnderLoad (context: GrowthContext, sql: postgres.Sql): Promise<PurgeUnderLoad> {
  const { plan, refresh, log } = context
  const expired = async (at: Date) => (await sql<[{ count: number }]>`select count(*)::int as count from tokens where expires_at < ${at}`)[0].count
  // A longer run than a scenario's: a p99 over minutes of purge is compared with one over more than a few seconds.
  const length = { seconds: Math.max(30, plan.length.seconds * plan.runs), amount: plan.length.amount }
  const before = await refresh.target()
  log('refresh without the purge')
  const without = await context.run(before.path, before.load, length)

  const { path, load } = await refresh.target()
  const started = new Date()
  const expiredBefore = await expired(started)
  log(`refresh while db:purge deletes ${expiredBefore.toLocaleString('en')} expired token rows`)
  let cannon!: autocannon.Instance
  const during = new Promise<autocannon.Result>((resolve, reject) => {
    cannon = autocannon({ url: context.url(path), pipelining: 1, duration: 3600, ...load }, (error, result) => {
      /* c8 ignore next: only autocannon itself failing */
      if (error !== null) reject(error); else resolve(result)
    })
  })
  const clock = performance.now()
  const output = await runPurge(context.environment)
  const seconds = (performance.now() - clock) / 1000
  cannon.stop()
  const measured = measuredOf(await during)
  const expiredAfter = await expired(started)
  log(`db:purge took ${seconds.toFixed(1)} s: ${output}`)
  return {
    expiredBefore,
    expiredAfter,
    output,
    seconds,
    without,
    during: measured,
    limits,
    pass: [measured.p99 < limits.p99Factor * without.p99, seconds <= limits.seconds, measured.errors === 0, expiredAfter === 0].every(Boolean)
  }
}

/** `npm run db:purge` in a process of its own, as an operator or a cron job runs it; resolves to its output. */
function runPurge (environment: Record<string, string>): Promise<string> {
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  const child = fork(new URL(`../src/cli/db-purge${extension}`, here), [], { env: { ...inherited, ...environment }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      /* c8 ignore next: only a purge that fails */
      if (code !== 0) reject(new Error(`db:purge exited with ${code}`)); else resolve(output.trim())
    })
  })
}

const size = (bytes: number) => bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GB` : `${(bytes / 1024 ** 2).toFixed(1)} MB`

function sizeTable (sizes: RelationSize[]): string[] {
  return [
    '| table | index | size |',
    '|---|---|---:|',
    ...sizes.map((relation) => relation.table === undefined ? `| ${relation.name} | | ${size(relation.bytes)} |` : `| | ${relation.name} | ${size(relation.bytes)} |`)
  ]
}

/** The fill, the sizes and the purge under load, as Markdown for under the main table. */
export function growthMarkdown ({ filled, census: counted, sizes, purge }: GrowthReport): string {
  const total = (test: (row: Census) => boolean) => counted.filter(test).reduce((sum, row) => sum + row.count, 0).toLocaleString('en')
  const lines = [
    `Filled ${filled.tokens.toLocaleString('en')} token rows (${total((row) => row.expired)} expired, ${total((row) => row.revoked)} revoked, ` +
      `${total((row) => row.type === 'access')} access), ${filled.sessions.toLocaleString('en')} sessions and ${filled.users.toLocaleString('en')} users ` +
      `in ${filled.insertSeconds.toFixed(0)} s, then VACUUM ANALYZE in ${filled.vacuumSeconds.toFixed(0)} s.`,
    '',
    ...sizeTable(sizes)
  ]
  const verdict = (pass: boolean) => pass ? 'pass' : '**fail**'
  lines.push(
    '',
      `| purge of ${purge.expiredBefore.toLocaleString('en')} expired token rows while refreshes run | req/s | p50 ms | p99 ms | errors | goal | result |`,
      '|---|---:|---:|---:|---:|---:|---|',
      `| refresh without the purge | ${purge.without.rate.toFixed(0)} | ${purge.without.p50} | ${purge.without.p99} | ${purge.without.errors} | | |`,
      `| refresh during the purge | ${purge.during.rate.toFixed(0)} | ${purge.during.p50} | ${purge.during.p99} | ${purge.during.errors} | p99 < ${purge.limits.p99Factor * purge.without.p99} ms | ${verdict([purge.during.p99 < purge.limits.p99Factor * purge.without.p99, purge.during.errors === 0].every(Boolean))} |`,
      `| the purge (\`npm run db:purge\`): ${purge.output} | | | | | ≤ ${purge.limits.seconds} s | ${purge.seconds.toFixed(0)} s, ${purge.expiredAfter.toLocaleString('en')} expired left: ${verdict([purge.seconds <= purge.limits.seconds, purge.expiredAfter === 0].every(Boolean))} |`
  )
  return lines.join('\n')
}
