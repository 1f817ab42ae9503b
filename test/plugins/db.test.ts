import { readFileSync } from 'node:fs'
import { sql } from 'drizzle-orm'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import db from '../../plugins/db.js'
import { openDatabase, type Database } from '../../src/db/connect.js'
import { uniqueViolation } from '../../src/db/unique-violation.js'
import { users } from '../../src/db/schema.js'
import { freshDatabase, postgresUrl } from '../helper.js'

const onPostgres = { skip: postgresUrl === undefined && 'runs when DATABASE_URL names a PostgreSQL server' }

async function tableNames (database: Database): Promise<string[]> {
  const result = await database.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`)
  const rows = Array.isArray(result) ? result : (result as unknown as { rows: Array<{ table_name: string }> }).rows
  return rows.map((row) => row.table_name)
}

/** A fresh PGlite, and a fresh PostgreSQL database when DATABASE_URL is set. */
async function everyDriver (t: Test) {
  const dataDir = t.testdir()
  const connections = [await openDatabase({ dataDir, databasePoolSize: 1 })]
  if (postgresUrl !== undefined) {
    connections.push(await openDatabase({ databaseUrl: await freshDatabase(t, postgresUrl), dataDir, databasePoolSize: 1 }))
  }
  return connections
}

t.test('PGlite under dataDir: migrated at open, kept across restarts', async (t) => {
  const dataDir = t.testdir()
  const first = await openDatabase({ dataDir, databasePoolSize: 1 })
  t.equal(first.kind, 'pglite')
  t.same(await tableNames(first.db), ['auth_events', 'imported_users', 'legacy_revoked_jtis', 'mail_outbox', 'mail_tokens', 'revoked_sessions', 'sessions', 'tokens', 'users', 'webhook_outbox'])
  await first.db.execute(sql`insert into users (username, username_key, email, email_key, password_hash) values ('kept', 'kept', 'k@example.com', 'k@example.com', 'x')`)
  await first.close()
  await first.close()

  const second = await openDatabase({ dataDir, databasePoolSize: 1 })
  t.equal(await second.db.$count(users), 1, 'the data is on disk')
  await second.close()
})

t.test('postgres.js: instances migrating at once take turns', onPostgres, async (t) => {
  const databaseUrl = await freshDatabase(t, postgresUrl!)
  const dataDir = t.testdir()
  const connections = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl, dataDir, databasePoolSize: 2 })))
  t.teardown(() => Promise.all(connections.map((connection) => connection.close())))
  for (const connection of connections) {
    t.equal(connection.kind, 'postgres')
    t.same(await tableNames(connection.db), ['auth_events', 'imported_users', 'legacy_revoked_jtis', 'mail_outbox', 'mail_tokens', 'revoked_sessions', 'sessions', 'tokens', 'users', 'webhook_outbox'])
  }
  const applied = await connections[0]!.db.execute(sql`select count(*)::int as count from drizzle.__drizzle_migrations`)
  const journal = JSON.parse(readFileSync(new URL('../../drizzle/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] }
  t.equal((applied as unknown as Array<{ count: number }>)[0]!.count, journal.entries.length, 'each migration applied once')
})

t.test('a unique violation is read from either driver\'s error', async (t) => {
  const wrapped = (cause: object) => Object.assign(new Error('Failed query'), { cause })
  t.equal(uniqueViolation(wrapped({ code: '23505', constraint_name: 'from_postgres_js' })), 'from_postgres_js')
  t.equal(uniqueViolation(wrapped({ code: '23505', constraint: 'from_pglite' })), 'from_pglite')
  t.equal(uniqueViolation(wrapped({ code: '22012' })), undefined)
  t.equal(uniqueViolation(new Error('plain')), undefined)

  for (const connection of await everyDriver(t)) {
    const row = { username: 'same', usernameKey: 'same', email: 'a@example.com', emailKey: 'a@example.com', passwordHash: 'x' }
    await connection.db.insert(users).values(row)
    const error = await connection.db.insert(users).values({ ...row, emailKey: 'b@example.com' }).catch((error: unknown) => error)
    t.equal(uniqueViolation(error), 'users_username_key_unique', connection.kind)
    const other = await connection.db.execute(sql`select 1/0`).catch((error: unknown) => error)
    t.equal(uniqueViolation(other), undefined, `${connection.kind}: other errors are not unique violations`)
    await connection.close()
  }
})

t.test('listen: onConnect runs before it resolves, and NOTIFY arrives on commit', async (t) => {
  for (const connection of await everyDriver(t)) {
    const received: string[] = []
    let connects = 0
    const unlisten = await connection.listen('test_channel', (payload) => received.push(payload), async () => { connects++ })
    t.equal(connects, 1, `${connection.kind}: onConnect ran`)
    await connection.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_notify('test_channel', 'hello')`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      t.same(received, [], `${connection.kind}: nothing before the commit`)
    })
    const deadline = Date.now() + 2000
    while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    t.same(received, ['hello'], `${connection.kind}: delivered after the commit`)
    await unlisten()
    await connection.close()
    await unlisten()
  }
})

t.test('the plugin decorates fastify.db and closes it with the app', async (t) => {
  // PGlite compiles its WASM and migrates at start: slow on a busy machine, as in the service's own options.
  const app = Fastify({ pluginTimeout: 120_000 })
  await app.register(db, { dataDir: t.testdir(), databasePoolSize: 1 })
  await app.ready()
  t.same(await tableNames(app.db), ['auth_events', 'imported_users', 'legacy_revoked_jtis', 'mail_outbox', 'mail_tokens', 'revoked_sessions', 'sessions', 'tokens', 'users', 'webhook_outbox'])
  await app.close()
  await t.rejects(app.db.execute(sql`select 1`), 'closed with the app')
})
