// `npm run bench -- --rows <N>`: the fill makes the rows it claims, and a smoke run measures the scenarios again
// on the filled database and the purge under load. Speed is not checked here.
import postgres from 'postgres'
import t from 'tap'
import { runBench } from '../../bench/harness.js'
import { freshDatabase, postgresUrl } from '../helper.js'

const skip = postgresUrl === undefined && 'runs when DATABASE_URL names a PostgreSQL server'

t.test('--rows is PostgreSQL only', async (t) => {
  await t.rejects(runBench({ mode: 'smoke', tokenRows: 1000 }), /--rows: PostgreSQL only/)
})

t.test('the fill makes users, sessions and tokens in the proportions it claims', { skip }, async (t) => {
  // Loaded here: on PGlite the suite must not load, and so not count, PostgreSQL-only modules.
  const { census, fill, relationSizes } = await import('../../bench/fill.js')
  const { openPostgres } = await import('../../src/db/postgres.js')
  const url = await freshDatabase(t, postgresUrl!)
  await (await openPostgres(url, 1)).close()
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())

  const lines: string[] = []
  // 600 sessions: a hundred of each sixth.
  const filled = await fill(sql, 6005, (line) => lines.push(line))
  t.match(filled, { users: 150, sessions: 600, tokens: 6000 })
  t.ok(filled.insertSeconds > 0 && filled.vacuumSeconds > 0)
  t.match(lines, ['fill: 150 users', /^fill: 600 of 600 sessions/])
  t.same((await census(sql, filled.now)).map(({ type, expired, revoked, count }) => [type, expired, revoked, count]), [
    ['access', false, false, 400], // the newest of each live session
    ['access', true, false, 2100],
    ['access', true, true, 500], // a logged-out session's
    ['refresh', false, false, 400], // each live session's newest
    ['refresh', false, true, 2100], // rotated, or logged out, not yet expired
    ['refresh', true, false, 100], // each finished session's last
    ['refresh', true, true, 400]
  ], 'about half expired (31 rows in 60), half revoked (30 in 60)')

  const [tokens] = await sql`
    select count(distinct token_hash)::int as hashes, count(*) filter (where token_hash !~ '^[0-9a-f]{64}$')::int as bad_hashes,
      count(*) filter (where jti::text !~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$')::int as bad_jtis,
      count(*) filter (where not exists (select from sessions where sessions.id = tokens.session_id and sessions.user_id = tokens.user_id))::int as orphans,
      count(*) filter (where replaced_by is not null)::int as rotated,
      count(*) filter (where replaced_by is not null and not exists (
        select from tokens next where next.jti = tokens.replaced_by and next.session_id = tokens.session_id and next.type = 'refresh'
          and next.created_at = tokens.revoked_at))::int as broken_chains,
      count(*) filter (where created_at >= expires_at)::int as backwards
    from tokens`
  t.same(tokens, { hashes: 6000, bad_hashes: 0, bad_jtis: 0, orphans: 0, rotated: 2400, broken_chains: 0, backwards: 0 },
    'distinct 64-hex hashes, v4-shaped jtis, sessions of the same user, rotations chained to the next refresh token')
  const [sessions] = await sql`
    select count(*) filter (where expires_at < ${filled.now})::int as expired, count(*) filter (where revoked_at is not null)::int as revoked,
      count(distinct user_id)::int as users,
      count(*) filter (where expires_at <> (select max(expires_at) from tokens where session_id = sessions.id and type = 'refresh'))::int as off
    from sessions`
  t.same(sessions, { expired: 100, revoked: 100, users: 150, off: 0 }, 'a session expires with its newest refresh token')

  const sizes = await relationSizes(sql)
  t.same(sizes.filter((relation) => relation.table === 'tokens').map((relation) => relation.name),
    ['tokens_pkey', 'tokens_revoked_access_expires_at_idx', 'tokens_session_id_idx', 'tokens_user_id_idx'])
  t.ok(sizes.find((relation) => relation.name === 'tokens')!.bytes > 6000 * 100, 'the heap holds the rows')
})

t.test('--rows on PostgreSQL: the sizes, the scenarios again on the filled database, and the purge under load', { skip }, async (t) => {
  const { growthMarkdown } = await import('../../bench/growth.js')
  const lines: string[] = []
  const report = await runBench({ mode: 'smoke', only: 'refresh', databaseUrl: postgresUrl, tokenRows: 6000, log: (line) => lines.push(line) })
  t.same(report.rows.map((row) => row.scenario), ['POST /auth/refresh/, chained', 'POST /auth/refresh/, chained, 6,000 token rows'])
  const [empty, grown] = report.rows
  t.match(grown, { errors: 0, ceiling: 'empty database', ceilingRate: empty!.rate, goal: 0.8 })
  t.equal(grown!.ratio, grown!.rate / empty!.rate)
  t.ok(lines.some((line) => /^\| tokens \| \| [\d.]+ MB \|$/.test(line)), 'the sizes are printed')
  t.ok(lines.some((line) => line.startsWith('| | tokens_pkey | ')))

  const growth = report.growth!
  t.equal(growth.filled.tokens, 6000)
  const { purge } = growth
  t.ok(purge.expiredBefore >= 3100, 'the fill\'s expired rows, and any of the bench\'s own')
  t.equal(purge.expiredAfter, 0, 'the purge removed every expired row')
  t.ok(Number(/^purged (\d+) expired tokens and \d+ expired sessions \(postgres\)/.exec(purge.output)?.[1]) >= purge.expiredBefore, 'what db:purge printed')
  t.ok(purge.without.operations > 0 && purge.during.operations > 0, 'refreshes before and during the purge')
  t.equal(purge.without.errors + purge.during.errors, 0)
  t.equal(purge.pass, purge.during.p99 < 2 * purge.without.p99 && purge.seconds <= 600)
  t.equal(growth.pass, purge.pass)
  t.equal(report.pass, report.rows.every((row) => row.pass) && report.eventLoopDelayP99 < 50 && report.peakRss <= 256 * 1024 * 1024 && purge.pass)

  const text = growthMarkdown(growth).split('\n')
  t.match(text[0], /^Filled 6,000 token rows \([\d,]+ expired, [\d,]+ revoked, [\d,]+ access\), 600 sessions and 150 users in \d+ s/)
  t.ok(text.includes('| table | index | size |'))
  t.match(text.at(-3), /^\| refresh without the purge \| \d+ \|/)
  t.match(text.at(-1), /^\| the purge \(`npm run db:purge`\): purged \d+ expired tokens .* \| ≤ 600 s \| \d+ s, 0 expired left: pass \|$/)
  const slow = growthMarkdown({ ...growth, sizes: [{ name: 'tokens', bytes: 2 * 1024 ** 3 }], purge: { ...purge, seconds: 700, during: { ...purge.during, p99: 3 * purge.without.p99 } } })
  t.match(slow, /\| tokens \| \| 2\.00 GB \|/, 'sizes from a gigabyte on in GB')
  t.match(slow, /\| refresh during the purge \|.*\| \*\*fail\*\* \|\n.*\| 700 s, 0 expired left: \*\*fail\*\* \|$/, 'a missed goal fails')
})
