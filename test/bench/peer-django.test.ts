// `--peer django`: the old service gets the same chained refresh load in the same run, as the ceiling of a row of
// its own, and is skipped where it cannot run (harness.test.ts's PGlite run checks the line that says why). Speed
// is not checked here.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import autocannon from 'autocannon'
import postgres from 'postgres'
import t from 'tap'
import { runBench } from '../../bench/harness.js'
import { chainedRefresh, djangoRefreshScenario, djangoServiceDir, djangoUnavailable } from '../../bench/peer-django.js'
import { postgresUrl } from '../helper.js'

t.test('the old service cannot run without PostgreSQL, on another user or port, or without its packages', async (t) => {
  t.match(await djangoUnavailable(undefined), /PostgreSQL only, and DATABASE_URL is unset/)
  t.match(await djangoUnavailable('postgres://app@127.0.0.1:5432/db'), /user postgres on port 5432/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1:6543/db'), /user postgres on port 5432/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1/db', '/nonexistent/python3'), /^\/nonexistent\/python3 lacks Django, SimpleJWT, psycopg2 or gunicorn .*ENOENT/)
  t.match(await djangoUnavailable('postgres://postgres@127.0.0.1:5432/db', process.execPath), /lacks Django/, 'a binary that is no Python with the packages')
  t.equal(await djangoUnavailable('postgres://postgres@127.0.0.1:5432/db', '/bin/true'), undefined, 'one whose imports pass')
  t.ok(djangoServiceDir().endsWith('django-service') || djangoServiceDir().endsWith('django-service/'))
})

t.test('the chains survive a server that closes the connection after every answer, as gunicorn\'s sync workers do', async (t) => {
  // A refresh route in the manner of SimpleJWT's: each token once, a new one in exchange.
  const live = new Set<string>(Array.from({ length: 8 }, () => randomUUID()))
  let reused = 0
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => { body += chunk.toString() })
    request.on('end', () => {
      const { refresh } = JSON.parse(body) as { refresh: string }
      if (!live.delete(refresh)) { reused++; response.writeHead(401, { connection: 'close' }).end('{}'); return }
      const next = randomUUID()
      live.add(next)
      response.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ refresh: next }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const free = [...live]
  const { load, resets } = chainedRefresh(free, 4)
  const result = await autocannon({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, amount: 200, ...load })
  t.equal(reused, 0, 'no token went out twice')
  t.equal(result.non2xx, 0)
  t.equal(result.errors, resets(), 'the only errors are the resets of the requests written into closing connections')
  t.ok(result['2xx'] >= 50, 'the chains went on')
  t.ok(free.length >= 4 && free.every((token) => live.has(token)), 'the free list holds live tokens')
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
