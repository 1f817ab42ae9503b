// npm run import:django: users made by a real Django (../shared/django-service), imported from its database and from
// its dumpdata, on PGlite and on PostgreSQL.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { asc } from 'drizzle-orm'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { main, parseOptions } from '../../../src/cli/import-django.js'
import { loadConfig } from '../../../src/config.js'
import { openDatabase } from '../../../src/db/connect.js'
import { importedUsers, legacyRevokedJtis, users } from '../../../src/db/schema.js'
import { main as createUser } from '../../../src/cli/user-create.js'
import { Readable } from 'node:stream'
import { build, djangoServiceDir, testEnvironment } from '../../helper.js'

const run = promisify(execFile)
const djangoDir = djangoServiceDir()
const serverUrl = 'postgres://postgres@127.0.0.1:5432'

// One Django database for the file: setting it up (and making PBKDF2 hashes of 720,000 iterations) takes seconds.
const djangoDb = `django_import_${process.pid}_${randomBytes(3).toString('hex')}`
const djangoUrl = `${serverUrl}/${djangoDb}`
const admin = postgres(`${serverUrl}/postgres`, { max: 1, onnotice: () => {} })
t.teardown(async () => {
  await admin.unsafe(`drop database if exists "${djangoDb}" with (force)`)
  await admin.end()
})
await run('bash', [join(djangoDir, 'setup.sh'), djangoDb])
const django = (...args: string[]) => run('/usr/bin/python3', ['manage.py', ...args], { cwd: djangoDir, env: { ...process.env, SEED_DB: djangoDb }, maxBuffer: 1 << 24 })
// Ids 1 to 11, in this order, each a case of the README's rules; and one SimpleJWT refresh token blacklisted.
const made = await django('shell', '-c', `
import json
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
def make(name, email, password=None, **fields):
    user = User.objects.create_user(name, email, password)
    for field, value in fields.items(): setattr(user, field, value)
    user.save()
    return user
ada = make('Ada', 'shared@example.com', 'correct horse battery staple')
make('ada', 'Shared@Example.COM', 'another long passphrase', is_staff=True)
make('Zoë', 'zoe@example.com', 'a unicode passphrase', last_login=timezone.now())
make('sleeper', 'sleeper@example.com', 'a dormant passphrase', is_active=False)
make('nopass', 'nopass@example.com')
make('noemail', '', 'an emailless passphrase')
make('bob@example.org', 'bob@example.org', 'bob has a passphrase')
make('first.last+tag', 'first@example.com', 'a plus passphrase')
make('root', 'root@example.com', 'a root passphrase', is_superuser=True)
legacy = make('legacy', 'legacy@example.com')
legacy.password = MD5PasswordHasher().encode('a legacy secret', 'salt')
legacy.save()
make('typo', 'not an address', 'a typo passphrase')
token = RefreshToken.for_user(ada)
token.blacklist()
print(json.dumps({'jti': token['jti']}))
`)
const blacklistedJti = (JSON.parse(made.stdout) as { jti: string }).jti

async function importDjango (args: string[], environment: Record<string, string>) {
  let stdout = ''
  let stderr = ''
  const code = await main(args, environment, { write: (text) => { stdout += text } }, { write: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

/** The users and import records of the service's database, by id. */
async function stored (environment: Record<string, string>) {
  const connection = await openDatabase(loadConfig(environment))
  try {
    const { db } = connection
    return {
      users: await db.select().from(users).orderBy(asc(users.id)),
      imported: (await db.select().from(importedUsers).orderBy(asc(importedUsers.id))).map(({ id }) => id),
      revoked: await db.select().from(legacyRevokedJtis)
    }
  } finally {
    await connection.close()
  }
}

const djangoRows = async () => {
  const sql = postgres(djangoUrl, { max: 1 })
  try {
    return await sql<Array<{ id: number, password: string, date_joined: Date, last_login: Date | null }>>`select id, password, date_joined, last_login from auth_user order by id`
  } finally {
    await sql.end()
  }
}

const expectedLines = [
  /^id 2: imported: username "ada" is taken by user 1 \(the same once case-folded, or a look-alike\): imported as "ada#2"; email shared with user 1: imported with the undeliverable placeholder django-2@import\.invalid; .*; staff\/superuser: not mapped$/m,
  /^id 5: imported: unusable password: imported as it is/m,
  /^id 6: imported: no email: imported with the undeliverable placeholder django-6@import\.invalid/m,
  /^id 7: imported: username "bob@example\.org" is one our registration refuses \(.*\): imported as it is; with an @ in it, it cannot log in by username here, only by email$/m,
  /^id 8: imported: username "first\.last\+tag" is one our registration refuses \(.*\): imported as it is$/m,
  /^id 9: imported: staff\/superuser: not mapped$/m,
  /^id 10: skipped: password hash md5: refused as too weak to keep/m,
  /^id 11: imported: email "not an address" is not a valid address: imported with the undeliverable placeholder django-11@import\.invalid/m
]

async function checkImported (t: Test, environment: Record<string, string>, { tag, emailsVerified }: { tag: string | null, emailsVerified: boolean }) {
  const { users: rows, imported } = await stored(environment)
  const source = await djangoRows()
  t.same(rows.map(({ id }) => id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 11], 'ids kept; the md5 one is not imported')
  t.same(imported, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11])
  const byId = new Map(rows.map((row) => [row.id, row]))
  for (const django of source.filter(({ id }) => id !== 10)) {
    const row = byId.get(django.id)!
    t.equal(row.passwordHash, django.password, `id ${django.id}: the hash as Django stored it`)
    t.same(row.createdAt, django.date_joined, 'date_joined is created_at')
    t.same(row.lastLoginAt, django.last_login, 'last_login is last_login_at')
    t.equal(row.tag, tag)
  }
  t.match(byId.get(1), { username: 'Ada', email: 'shared@example.com', emailKey: 'shared@example.com', emailVerified: emailsVerified, disabledAt: null })
  t.match(byId.get(2), { username: 'ada#2', usernameKey: 'ada#2', email: 'django-2@import.invalid', emailVerified: false })
  t.match(byId.get(3), { username: 'Zoë', usernameKey: 'zoë', email: 'zoe@example.com', lastLoginAt: Date })
  t.type(byId.get(4)!.disabledAt, Date, 'inactive is disabled')
  t.match(byId.get(5)!.passwordHash, /^!/, 'the unusable password is kept')
  t.match(byId.get(6), { username: 'noemail', email: 'django-6@import.invalid', emailVerified: false })
  t.match(byId.get(7), { username: 'bob@example.org', email: 'bob@example.org' })
  t.match(byId.get(11), { email: 'django-11@import.invalid', emailVerified: false })
}

t.test('imports from the Django database: ids, fields and hashes kept, every rule reported, idempotent', async (t) => {
  const environment = await testEnvironment(t)
  const reportFile = join(t.testdir(), 'report.json')
  const first = await importDjango(['--from', djangoUrl, '--report', reportFile], environment)
  t.equal(first.code, 1, 'exit 1: a row was not imported')
  t.equal(first.stderr, '')
  t.match(first.stdout, `import from ${djangoUrl}/ (table auth_user)\n`.replace('/ (', ' ('))
  t.match(first.stdout, /^read 11, imported 10, already imported 0, skipped 1 \(weak_hash 1\)$/m)
  t.match(first.stdout, /^blacklisted SimpleJWT tokens: 1$/m)
  for (const line of expectedLines) t.match(first.stdout, line)
  t.equal(first.stdout.split('\n').filter((line) => line.startsWith('id ')).length, expectedLines.length, 'a line for each row not imported as it is, and only those')
  t.notMatch(first.stdout, /pbkdf2|\$[0-9a-f]{32}/, 'no password hash in the report')

  const report = JSON.parse(await readFile(reportFile, 'utf8'))
  t.match(report, {
    source: `${djangoUrl} (table auth_user)`,
    dryRun: false,
    read: 11,
    imported: 10,
    alreadyImported: 0,
    skipped: 1,
    skippedBy: { weak_hash: 1 },
    revokedJtis: 1
  })
  t.same(report.lines.map(({ id, outcome }: { id: number, outcome: string }) => `${id} ${outcome}`), ['2 imported', '5 imported', '6 imported', '7 imported', '8 imported', '9 imported', '10 skipped', '11 imported'])
  t.same(report.lines[0].reasons, ['username_renamed', 'email_shared', 'staff'])
  t.notMatch(JSON.stringify(report), /pbkdf2|md5\$/)

  await checkImported(t, environment, { tag: null, emailsVerified: false })
  const { revoked } = await stored(environment)
  t.same(revoked.map(({ jtiHash }) => jtiHash), [createHash('sha256').update(blacklistedJti).digest('hex')], 'the blacklisted jti, hashed')

  const second = await importDjango(['--from', djangoUrl], environment)
  t.equal(second.code, 1, 'the md5 row is still not imported')
  t.match(second.stdout, /^read 11, imported 0, already imported 10, skipped 1 \(weak_hash 1\)$/m)
  t.same((await stored(environment)).users.length, 10, 'nothing imported twice')

  const app = await build(t, environment)
  const registered = await app.inject({ method: 'POST', url: '/auth/register/', payload: { username: 'newcomer', email: 'newcomer@example.com', password: 'a fresh long passphrase' } })
  t.equal(registered.statusCode, 201)
  t.equal(registered.json().id, 12, 'a registration gets the id after the highest Django id')
})

t.test('--from users.json (manage.py dumpdata auth.user), with --tag and --emails-verified', async (t) => {
  const environment = await testEnvironment(t)
  const file = join(t.testdir(), 'users.json')
  await writeFile(file, (await django('dumpdata', 'auth.user')).stdout)
  const result = await importDjango(['--from', file, '--tag', 'django', '--emails-verified'], environment)
  t.equal(result.code, 1)
  t.match(result.stdout, `import from ${file}\n`)
  t.match(result.stdout, /^read 11, imported 10, already imported 0, skipped 1 \(weak_hash 1\)$/m)
  t.notMatch(result.stdout, /blacklisted/, 'a dump holds no blacklist')
  for (const line of expectedLines) t.match(result.stdout, line)
  await checkImported(t, environment, { tag: 'django', emailsVerified: true })

  const app = await build(t, environment)
  const registered = await app.inject({ method: 'POST', url: '/auth/register/', payload: { username: 'newcomer', email: 'newcomer@example.com', password: 'a fresh long passphrase' } })
  t.equal(registered.json().id, 12, 'the sequence moved past each batch\'s ids')
})

t.test('--dry-run reports what the import would do and writes nothing', async (t) => {
  const environment = await testEnvironment(t)
  const result = await importDjango(['--from', djangoUrl, '--dry-run'], environment)
  t.equal(result.code, 1)
  t.match(result.stdout, /^Dry run \(nothing written\): import from /)
  t.match(result.stdout, /^read 11, imported 10, already imported 0, skipped 1 \(weak_hash 1\)$/m)
  for (const line of expectedLines) t.match(result.stdout, line)
  t.same(await stored(environment), { users: [], imported: [], revoked: [] })
  const app = await build(t, environment)
  const registered = await app.inject({ method: 'POST', url: '/auth/register/', payload: { username: 'newcomer', email: 'newcomer@example.com', password: 'a fresh long passphrase' } })
  t.equal(registered.json().id, 1, 'the sequence did not move')
})

t.test('an id held by a user of ours is skipped, and a name ours took is renamed', async (t) => {
  const environment = await testEnvironment(t)
  const line = JSON.stringify({ username: 'ADA', email: 'ada.native@example.com', password: 'a native long passphrase' })
  t.equal(await createUser(Readable.from([line]), environment, { write: () => {} }, { write: () => {} }), 0)
  const result = await importDjango(['--from', djangoUrl], environment)
  t.equal(result.code, 1)
  t.match(result.stdout, /^read 11, imported 9, already imported 0, skipped 2 \(weak_hash 1, id_taken 1\)$/m)
  t.match(result.stdout, /^id 1: skipped: id 1 is held by a user who was not imported from Django$/m)
  t.match(result.stdout, /^id 2: imported: username "ada" is taken by user 1 .*: imported as "ada#2"; staff\/superuser: not mapped$/m, 'the email is no longer shared')
  const { users: rows } = await stored(environment)
  t.match(rows[0], { id: 1, username: 'ADA', email: 'ada.native@example.com' }, 'our user is untouched')
  t.match(rows[1], { id: 2, username: 'ada#2', email: 'Shared@example.com' })
})

t.test('rows a dump may hold that Django would not write', async (t) => {
  const environment = await testEnvironment(t)
  const file = join(t.testdir(), 'odd.json')
  const user = (pk: unknown, fields: Record<string, unknown>) => ({ model: 'auth.user', pk, fields: { password: 'pbkdf2_sha256$1$salt$hash', date_joined: '2020-01-01T00:00:00Z', ...fields } })
  await writeFile(file, JSON.stringify([
    { model: 'auth.user', pk: 'x', fields: {} },
    user(0, { username: 'zero' }),
    { model: 'auth.user', pk: 20 },
    user(21, { username: 'baddate', date_joined: 'not a date' }),
    user(22, { username: 'badlogin', last_login: 'nope' }),
    user(23, { username: 'bare', password: createHash('md5').update('secret').digest('hex') }),
    user(24, { username: 'crypt', password: 'crypt$$abN0Q2a6y2rLk' }),
    user(25, { username: 'x#27' }),
    user(26, { username: 'x', email: 'x@example.com' }),
    user(27, { username: 'X', email: 'x2@example.com' }),
    user(28, { username: 'quote"back\\slash{[', password: '', email: 'q@example.com', last_login: '2021-02-03T04:05:06Z' }),
    user(29, { username: 'paypaI', email: 'p1@example.com' }),
    user(30, { username: 'paypal', email: 'p2@example.com' })
  ]))
  const first = await importDjango(['--from', file], environment)
  t.equal(first.code, 1)
  t.match(first.stdout, /^read 13, imported 5, already imported 0, skipped 8 \(malformed 5, weak_hash 2, username_taken 1\)$/m)
  for (const line of [
    /^no id: skipped: malformed row: no integer pk$/m,
    /^id 20: skipped: malformed row: no username, password, date_joined$/m,
    /^id 21: skipped: malformed row: a date that is not one$/m,
    /^id 22: skipped: malformed row: a date that is not one$/m,
    /^id 23: skipped: password hash unsalted_md5 \(bare\): refused/m,
    /^id 24: skipped: password hash crypt: refused/m,
    /^id 25: imported: username "x#27" is one our registration refuses .*; no email: imported with the undeliverable placeholder django-25@import.invalid/m,
    /^id 26: imported: username "x" is one our registration refuses \(Ensure this field has at least 3 characters\.\): imported as it is$/m,
    /^id 27: skipped: username "X" is taken by user 26, and so is "X#27"$/m,
    /^id 28: imported: username "quote\\"back\\\\slash\{\[" is one our registration refuses .*; unusable password/m,
    /^id 30: imported: username "paypal" is taken by user 29 \(the same once case-folded, or a look-alike\): imported as "paypal#30"$/m
  ]) t.match(first.stdout, line)
  t.equal(first.stdout.split('\n').filter((line) => /^(no id|id \d+):/.test(line)).length, 12)
  const { users: rows } = await stored(environment)
  t.match(rows, [{ id: 25 }, { id: 26 }, { id: 28, passwordHash: '', disabledAt: null, lastLoginAt: new Date('2021-02-03T04:05:06Z') }, { id: 29, username: 'paypaI' }, { id: 30, username: 'paypal#30' }])

  const second = await importDjango(['--from', file], environment)
  t.match(second.stdout, /^read 13, imported 0, already imported 5, skipped 8 /m, 'the one whose rename is taken is refused again')
})

t.test('--table: a custom user model with the same columns; a database without SimpleJWT', async (t) => {
  const name = `django_custom_${process.pid}_${randomBytes(3).toString('hex')}`
  await admin.unsafe(`create database "${name}"`)
  t.teardown(() => admin.unsafe(`drop database if exists "${name}" with (force)`))
  const sql = postgres(`${serverUrl}/${name}`, { max: 1, onnotice: () => {} })
  await sql`create table accounts_user (id serial primary key, password text not null, last_login timestamptz, is_superuser boolean not null,
    username text not null, email text, is_staff boolean not null, is_active boolean not null, date_joined timestamptz not null)`
  await sql.end()
  const environment = await testEnvironment(t)
  // postgres.js hands the password to the server, which trusts the loopback; the report leaves it out.
  const result = await importDjango(['--from', `postgres://postgres:hunter2@127.0.0.1:5432/${name}`, '--table', 'public.accounts_user'], environment)
  t.equal(result.code, 0, 'every row (there are none) was imported')
  t.equal(result.stdout, `import from postgres://postgres@127.0.0.1:5432/${name} (table public.accounts_user)\nread 0, imported 0, already imported 0, skipped 0\n`)
})

t.test('a bad command line, configuration or source is reported, with exit code 1', async (t) => {
  t.match(parseOptions([]), /^--from is required\nusage: /)
  t.match(parseOptions(['--from', 'x.json', '--force']), /^Unknown option '--force'.*\nusage: /s)
  t.equal(parseOptions(['--from', 'x.json', '--tag', 'x'.repeat(65)]), '--tag: 1 to 64 characters, as the admin API takes')
  t.match(parseOptions(['--from', 'x.json', '--tag', 'django']), { from: 'x.json', table: 'auth_user', dryRun: false, tag: 'django', emailsVerified: false })

  const usage = await importDjango([], { DATA_DIR: t.testdir() })
  t.equal(usage.code, 1)
  t.match(usage.stderr, /^--from is required/)
  const config = await importDjango(['--from', 'users.json'], { DATA_DIR: t.testdir(), ACCESS_TOKEN_TTL: 'soon' })
  t.equal(config.code, 1)
  t.match(config.stderr, /^Invalid configuration:\n {2}ACCESS_TOKEN_TTL: /)
  const environment = await testEnvironment(t)
  const missing = await importDjango(['--from', join(t.testdir(), 'missing.json')], environment)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /ENOENT/)
  const notDump = join(t.testdir(), 'not-a-dump.json')
  await writeFile(notDump, '{"users": []}')
  const refused = await importDjango(['--from', notDump], environment)
  t.equal(refused.code, 1)
  t.equal(refused.stderr, 'not a dumpdata file: unexpected "{"\n')
  const onlyBad = join(t.testdir(), 'only-bad.json')
  await writeFile(onlyBad, '[{"model": "auth.user", "pk": 1}]')
  const bad = await importDjango(['--from', onlyBad], environment)
  t.equal(bad.code, 1)
  t.match(bad.stdout, /^read 1, imported 0, already imported 0, skipped 1 \(malformed 1\)\nid 1: skipped: malformed row: no username, password, date_joined\n$/m)
  const noTable = await importDjango(['--from', djangoUrl, '--table', 'no_such_table'], environment)
  t.equal(noTable.code, 1)
  t.match(noTable.stderr, /relation "no_such_table" does not exist/)
})
