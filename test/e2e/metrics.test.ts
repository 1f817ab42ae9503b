// /metrics of the real `npm start` under WEB_CONCURRENCY=2: every worker's metrics, aggregated by the primary.
import t from 'tap'
import { newUser, testEnvironment } from '../helper.js'
import { alone, freePort, startService, type Running } from './service.js'

/** Waits until the service has logged `count` lines that match; answers them. The log pipe may lag the answers. */
async function logged (running: Running, pattern: RegExp, count = 1): Promise<RegExpExecArray[]> {
  const deadline = Date.now() + 10_000
  let lines = [...running.output().matchAll(pattern)]
  while (lines.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    lines = [...running.output().matchAll(pattern)]
  }
  return lines
}

/** The value of one sample, such as `auth_registrations_total`; undefined when absent. */
function sample (text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

// WEB_CONCURRENCY above 1 needs PostgreSQL.
t.test('WEB_CONCURRENCY=2: /metrics, whichever worker answers it, adds up the counters and durations of both; a worker that does not answer makes it 503', {
  skip: process.env.DATABASE_URL === undefined && 'runs when DATABASE_URL names a PostgreSQL server'
}, async (t) => {
  const port = await freePort()
  const token = 'a-metrics-token-of-16+'
  const running = await startService(t, { ...(await testEnvironment(t, { HOST: '127.0.0.1', LOG_LEVEL: 'info', METRICS_TOKEN: token })), PORT: String(port), WEB_CONCURRENCY: '2' })
  const deadline = Date.now() + 60_000
  while (running.output().split('Server listening at').length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))

  const registrations = 8
  for (let i = 0; i < registrations; i++) t.equal((await alone(port, 'POST', '/auth/register/', { body: newUser() })).status, 201)
  const registeredBy = (await logged(running, /"pid":(\d+)[^\n]*"msg":"user registered"/g, registrations)).map((match) => match[1])
  t.equal(registeredBy.length, registrations)
  t.equal(new Set(registeredBy).size, 2, 'both workers registered some')

  t.equal((await alone(port, 'GET', '/metrics')).status, 401, 'METRICS_TOKEN still holds')
  for (let scrape = 0; scrape < 4; scrape++) {
    const { status, type, text } = await alone(port, 'GET', '/metrics', { token })
    t.equal(status, 200)
    t.match(type, /^text\/plain; version=0\.0\.4/)
    t.equal(sample(text, 'auth_registrations_total'), registrations, `scrape ${scrape + 1}: the registrations of both workers`)
    const series = 'method="POST",route="/auth/register/",status_code="201"'
    t.equal(sample(text, `http_request_duration_seconds_count{${series}}`), registrations, 'the durations of both')
    t.equal(sample(text, `http_request_duration_seconds_bucket{le="+Inf",${series}}`), registrations)
    t.ok((sample(text, `http_request_duration_seconds_sum{${series}}`) ?? 0) > 0)
    t.equal(text.match(/^# TYPE http_request_duration_seconds histogram$/gm)?.length, 1, 'one histogram, not one per worker')
    t.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'the process metrics')
    t.equal(sample(text, 'auth_hashing_in_flight'), 0)
  }

  // A stopped worker answers nothing: a scrape that reaches the other one is a 503 once prom-client's 5 s are over.
  const stopped = Number(registeredBy[0])
  process.kill(stopped, 'SIGSTOP')
  t.teardown(() => {
    try { process.kill(stopped, 'SIGCONT') } catch {}
  })
  const started = Date.now()
  const scrapes = Array.from({ length: 3 }, () => alone(port, 'GET', '/metrics', { token }).then((answer) => ({ ...answer, after: Date.now() - started })))
  const first = await Promise.race(scrapes)
  process.kill(stopped, 'SIGCONT')
  t.equal(first.status, 503)
  t.ok(first.after >= 5000 && first.after < 9000, `after ${first.after} ms`)
  t.match(JSON.parse(first.text), { statusCode: 503, code: 'service_unavailable', message: 'Not every worker answered with its metrics; retry shortly.' })
  const [warned] = await logged(running, /[^\n]*"msg":"metrics not gathered from every worker"/g)
  t.match(warned?.[0], /"level":40,.*"message":"Operation timed out\."/, 'a warn line with prom-client\'s error')
  for (const { status } of await Promise.all(scrapes)) t.ok([200, 503].includes(status), `then answered ${status}`)
  t.equal((await alone(port, 'GET', '/metrics', { token })).status, 200, 'both answer again')

  process.kill(running.serverPid!, 'SIGTERM')
  t.equal(await running.exited, 0, 'SIGTERM still stops every worker gracefully')
})
