import { eq } from 'drizzle-orm'
import Fastify from 'fastify'
import t from 'tap'
import db from '../../plugins/db.js'
import users, { fillConfusableKeys } from '../../plugins/users.js'
import { users as usersTable } from '../../src/db/schema.js'
import { confusableKey, lowerConfusableKey, shownConfusableKey } from '../../src/identity.js'
import { freshDatabase, postgresUrl } from '../helper.js'

t.test('profiles are read once, then served from memory until their TTL', async (t) => {
  // PGlite compiles its WASM and migrates at start: slow on a busy machine, as in the service's own options.
  const app = Fastify({ pluginTimeout: 120_000 })
  await app.register(db, {
    dataDir: t.testdir(),
    databasePoolSize: 1,
    databaseUrl: postgresUrl === undefined ? undefined : await freshDatabase(t, postgresUrl)
  })
  await app.register(users, { cacheSize: 2, cacheTtl: 300 })
  t.teardown(() => app.close())
  await app.ready()

  const insert = (name: string) => app.db.insert(usersTable)
    .values({ username: name, usernameKey: name, email: `${name}@example.com`, emailKey: `${name}@example.com`, passwordHash: 'x' })
    .returning({ id: usersTable.id })
  const [{ id }] = await insert('ada') as [{ id: number }]
  t.match(await app.usersRepository.profile(id), { id, username: 'ada', email: 'ada@example.com', created_at: /^\d{4}-\d\d-\d\dT/ })
  t.equal(await app.usersRepository.profile(id + 100), undefined, 'no such user')

  await app.db.update(usersTable).set({ email: 'changed@example.com' }).where(eq(usersTable.id, id))
  t.equal((await app.usersRepository.profile(id))?.email, 'ada@example.com', 'answered from memory, no query')
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal((await app.usersRepository.profile(id))?.email, 'changed@example.com', 'read again once the TTL has passed')

  await app.db.update(usersTable).set({ email: 'again@example.com' }).where(eq(usersTable.id, id))
  const [{ id: second }] = await insert('grace') as [{ id: number }]
  const [{ id: third }] = await insert('linus') as [{ id: number }]
  await app.usersRepository.profile(second)
  await app.usersRepository.profile(third)
  t.equal((await app.usersRepository.profile(id))?.email, 'again@example.com', 'evicted by newer profiles past cacheSize')

  // A failure that is not a taken name or address is the database's, and passes through as it is.
  const broken = { username: 'nul', email: 'nul@example.com', passwordHash: 'a\u0000b' }
  const failures = await Promise.all([
    app.usersRepository.create(broken),
    app.db.transaction((tx) => app.usersRepository.changeEmail(tx, id, 'nul\u0000@example.com'))
  ].map((attempt) => attempt.then(() => 'resolved', (error: { statusCode?: number }) => error.statusCode)))
  t.same(failures, [undefined, undefined], 'rejected, and not as a 409')
})

t.test('users registered before username_skeleton get their confusable key; of two that look alike, the later keeps none', async (t) => {
  const app = Fastify({ pluginTimeout: 120_000 })
  await app.register(db, {
    dataDir: t.testdir(),
    databasePoolSize: 1,
    databaseUrl: postgresUrl === undefined ? undefined : await freshDatabase(t, postgresUrl)
  })
  await app.register(users)
  t.teardown(() => app.close())
  await app.ready()

  const insert = (name: string) => app.db.insert(usersTable)
    .values({ username: name, usernameKey: name.toLowerCase(), email: `${name}@example.com`, emailKey: `${name}@example.com`, passwordHash: 'x' })
    .returning({ id: usersTable.id })
  const ids = []
  for (const name of ['admin', 'ꓮꓓꓟꓲꓠ', 'grace']) ids.push((await insert(name) as [{ id: number }])[0].id)
  const warnings: unknown[] = []
  await fillConfusableKeys(app.db, { warn: (...args) => { warnings.push(args) } })
  const rows = await app.db.select({ id: usersTable.id, key: usersTable.usernameSkeleton, lower: usersTable.usernameSkeletonLower, shown: usersTable.usernameSkeletonShown })
    .from(usersTable).orderBy(usersTable.id)
  t.same(rows, [
    { id: ids[0], key: confusableKey('admin'), lower: lowerConfusableKey('admin'), shown: shownConfusableKey('admin') },
    { id: ids[1], key: null, lower: null, shown: null },
    { id: ids[2], key: confusableKey('grace'), lower: lowerConfusableKey('grace'), shown: shownConfusableKey('grace') }
  ])
  t.same(warnings, [[{ userId: ids[1] }, 'username looks like another user\'s: left without a confusable key']])
  const created = await app.usersRepository.create({ username: 'ΑDMΙΝ'.normalize('NFKC'), email: 'x@example.com', passwordHash: 'x' }).catch((error: unknown) => error)
  t.match(created, { statusCode: 409, code: 'username_taken' }, 'a new look-alike is refused')
})
