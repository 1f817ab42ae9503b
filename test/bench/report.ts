// What every smoke report must show, whichever database it ran on.
import type { Test } from 'tap'
import type { Report } from '../../bench/harness.js'

export function checkReport (t: Test, report: Report, scenarios: string[]) {
  t.same(report.rows.map((row) => row.scenario), scenarios)
  for (const row of report.rows) {
    t.equal(row.errors, 0, `${row.scenario}: no errors`)
    t.ok(row.rate > 0 && row.ceilingRate > 0, `${row.scenario}: a rate and a ceiling`)
    t.equal(row.ratio, row.rate / row.ceilingRate, `${row.scenario}: the ratio is rate over ceiling`)
    t.equal(row.pass, row.ratio >= row.goal && row.errors === 0, `${row.scenario}: pass means the goal is met`)
    t.ok(row.p50 <= row.p99, `${row.scenario}: p50 ≤ p99`)
  }
  t.ok(report.eventLoopDelayP99 > 0, 'the event-loop delay was read off the service')
  t.ok(report.peakRss > 32 * 1024 * 1024 && report.peakRss < 4 * 1024 * 1024 * 1024, 'the peak RSS is a process size')
  t.equal(report.limits.peakRss, 256 * 1024 * 1024 + (report.embeddedDatabase ?? 0), 'on PGlite, the embedded database\'s own size is allowed on top')
  t.equal(report.pass, report.rows.every((row) => row.pass) && report.eventLoopDelayP99 < 50 && report.peakRss <= report.limits.peakRss)
  t.equal(report.machine.node, process.version)
}

export const common = ['GET /auth/me/, one token', 'GET /auth/me/, 300 tokens', 'GET /auth/me/, tokens never seen', 'POST /auth/login/, 10 users', 'POST /auth/register/, new users']
