// The benchmark harness in --smoke mode: every scenario runs, errors are zero and the numbers add
// up. Speed is not checked here: `npm run bench` measures it.
import t from 'tap'
import { chart, markdown, runBench, type Report } from '../../bench/harness.js'
import { checkReport, common } from './report.js'

t.test('--smoke on PGlite runs every scenario but refresh, with zero errors', async (t) => {
  const lines: string[] = []
  const report = await runBench({ mode: 'smoke', peer: 'django', log: (line) => lines.push(line) })
  t.equal(report.database, 'PGlite')
  checkReport(t, report, common)
  t.ok(report.embeddedDatabase! > 16 * 1024 * 1024 && report.embeddedDatabase! < 1024 * 1024 * 1024, 'PGlite\'s own resident size at idle was measured')
  t.ok(lines.includes('skipped: the comparison with the old Django service: it runs on PostgreSQL only, and DATABASE_URL is unset'), 'without the old service, which needs PostgreSQL')
})

t.test('--only runs the scenarios whose name contains it', async (t) => {
  // The cheapest scenario: the one above ran them all, hashing ones included.
  const report = await runBench({ mode: 'smoke', only: 'one token' })
  t.same(report.rows.map((row) => row.scenario), ['GET /auth/me/, one token'])
  t.equal(report.rows[0]!.errors, 0)
  t.ok(report.rows[0]!.rate > 0 && report.rows[0]!.ceilingRate > 0)
  await t.rejects(runBench({ mode: 'smoke', only: 'no such scenario' }), /no scenario's name contains it/)
})

t.test('the table and the chart show every row, and fail where a goal is missed', async (t) => {
  const row = { p50: 1, p99: 3, errors: 0, ceiling: 'bare Fastify route', ceilingRate: 1000, goal: 0.8 }
  const report: Report = {
    mode: 'full',
    database: 'PGlite',
    machine: { cpu: 'Test CPU', cores: 2, node: 'v20.0.0' },
    rows: [
      { ...row, scenario: 'fast <route>', rate: 900, ratio: 0.9, pass: true },
      { ...row, scenario: 'slow route', rate: 500, ratio: 0.5, pass: false }
    ],
    eventLoopDelayP99: 60,
    peakRss: 300 * 1024 * 1024,
    embeddedDatabase: 20 * 1024 * 1024,
    limits: { eventLoopDelayP99: 50, peakRss: 276 * 1024 * 1024 },
    pass: false
  }
  const table = markdown(report).split('\n')
  t.equal(table[0], 'PGlite, Test CPU, 2 cores, Node v20.0.0, full run')
  t.equal(table[4], '| fast <route> | 900 | 1 | 3 | 0 | bare Fastify route | 1000 | 90% | ≥ 80% | pass |')
  t.equal(table[5], '| slow route | 500 | 1 | 3 | 0 | bare Fastify route | 1000 | 50% | ≥ 80% | **fail** |')
  t.match(table[6], /^\| event-loop delay p99 .* 60\.0 .* < 50 ms \| \*\*fail\*\* \|$/)
  t.match(table[7], /^\| peak RSS of the service, PGlite's 20 MB at idle included \| 300 MB .* ≤ 276 MB \| \*\*fail\*\* \|$/)
  const onPostgres = markdown({ ...report, database: 'PostgreSQL', embeddedDatabase: undefined, limits: { eventLoopDelayP99: 50, peakRss: 256 * 1024 * 1024 } }).split('\n')
  t.match(onPostgres[7], /^\| peak RSS of the service \| 300 MB .* ≤ 256 MB \| \*\*fail\*\* \|$/, 'on PostgreSQL, the limit alone')

  const svg = chart(report)
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(svg, /fast &lt;route&gt;/, 'labels are escaped')
  t.equal(svg.match(/<rect /g)?.length, 1 + 2 * report.rows.length, 'a background, then a ceiling and a service bar per row')
  t.match(svg, /fill="#2e7d32"/)
  t.match(svg, /fill="#c62828"/)
})
