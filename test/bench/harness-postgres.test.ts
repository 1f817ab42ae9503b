// The benchmark harness in --smoke mode on PostgreSQL, in a file of its own so that tap runs it beside the PGlite
// runs of harness.test.ts. Speed is not checked here: `npm run bench` measures it.
import t from 'tap'
import { runBench } from '../../bench/harness.js'
import { postgresUrl } from '../helper.js'
import { checkReport, common } from './report.js'

t.test('--smoke on PostgreSQL adds refresh against its raw SQL ceiling', { skip: postgresUrl === undefined && 'runs when DATABASE_URL names a PostgreSQL server' }, async (t) => {
  const lines: string[] = []
  const report = await runBench({ mode: 'smoke', databaseUrl: postgresUrl, log: (line) => lines.push(line) })
  t.equal(report.database, 'PostgreSQL')
  checkReport(t, report, [...common, 'POST /auth/refresh/, chained'])
  t.equal(report.embeddedDatabase, undefined)
  t.match(lines, ['migrating the database', 'starting the service on PostgreSQL'])
})
