// `--peer django`: the old service gets the same chained refresh load in the same run, as the ceiling of a row of
// its own, and is skipped with a line saying why where it cannot run. Speed is not checked here.
import postgres from 'postgres'
import t from 'tap'
import { runBench } from '../../bench/harness.js'
import { djangoRefreshScenario, djangoServiceDir, djangoUnavailable } from '../../bench/peer-django.js'
import { postgresUrl } from '../helper.js'

t.test('the old service cannot run without PostgreSQL, on another user or port, or without its packages', async (t) => {
  t.match(await djangoUnavailable(undefined), /PostgreSQL only, and DATABASE_URL is unset/)
  t.match(await djangoUnavailable('postgres://app@127.0.0.1:5432/db'), /user postgres on port 5432/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1:6543/db'), /user postgres on port 5432/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1/db', '/nonexistent/python3'), /^\/nonexistent\/python3 lacks Django, SimpleJWT, psycopg2 or gunicorn .*ENOENT/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1:5432/db', process.execPath), /lacks Django/, 'a binary that is no Python with the packages')
  t.ok(djangoServiceDir().endsWith('django-service') || djangoServiceDir().endsWith('django-service/'))
})

t.test('the bench goes on without the old service, and says why', async (t) => {
  const lines: string[] = []
  const report = await runBench({ mode: 'smoke', only: 'one token', databaseUrl: postgresUrl, peer: 'django', python: '/nonexistent/python3', log: (line) => lines.push(line) })
  t.same(report.rows.map((row) => row.scenario), ['GET /auth/me/, one token'])
  t.match(lines.find((line) => line.startsWith('skipped: ')), /^skipped: the comparison with the old Django service: \/nonexistent\/python3 lacks Django/)
})

t.test('--peer django on PostgreSQL: refresh against the old service, same load, zero errors', { skip: postgresUrl === undefined && 'runs when DATABASE_URL names a PostgreSQL server' }, async (t) => {
  const lines: string[] = []
  const report = await runBench({ mode: 'smoke', only: 'vs Django', databaseUrl: postgresUrl, peer: 'django', log: (line) => lines.push(line) })
  t.same(report.rows.map((row) => row.scenario), [djangoRefreshScenario])
  const row = report.rows[0]!
  t.equal(row.errors, 0, 'no token is presented twice on either side')
  t.ok(row.rate > 0 && row.ceilingRate > 0, 'a rate and a ceiling')
  t.equal(row.ratio, row.rate / row.ceilingRate)
  t.equal(row.goal, 5)
  t.equal(row.pass, row.ratio >= row.goal)

  const started = lines.map((line) => /^starting the old Django service on database (\w+)$/.exec(line)).find(Boolean)
  t.ok(started, 'the old service got a scratch database')
  const admin = postgres(postgresUrl!, { max: 1 })
  t.teardown(() => admin.end())
  t.same(await admin`select 1 from pg_database where datname = ${started![1]!}`, [], 'dropped afterwards')
})
