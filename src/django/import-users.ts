// Brings the users of a Django service over, with their ids and their password hashes as Django stored them.
// The README's "Importing users from Django" says what is mapped and why each rule is what it is.
import { createHash } from 'node:crypto'
import { or, sql, TransactionRollbackError } from 'drizzle-orm'
import type { Database } from '../db/connect.js'
// The one writer of users besides plugins/users.ts: a bulk insert of 1,000 rows at a time with ids kept, which the
// repository's one-user create() cannot do at 10,000 users a second; it builds each row as the repository does.
// eslint-disable-next-line no-restricted-imports
import { importedUsers, legacyRevokedJtis, users } from '../db/schema.js'
import { confusableKey, emailKey, lowerConfusableKey, normaliseEmail, registrationErrors, shownConfusableKey, usernameKey, validEmail } from '../identity.js'

/** Rows per read from the source and per insert: 1,000 rows of 14 columns stay well under PostgreSQL's 65,535 parameters. */
export const batchSize = 1000

/** A row of Django's auth_user. */
export interface DjangoUser {
  id: number
  username: string
  email: string
  password: string
  dateJoined: Date
  lastLogin: Date | null
  isActive: boolean
  isStaff: boolean
  isSuperuser: boolean
}

/** A row of the source that is not a user: a dumpdata entry lacking a field, say. */
export interface MalformedRow {
  id: number | null
  malformed: string
}

export type SourceRow = DjangoUser | MalformedRow

export interface ImportOptions {
  dryRun: boolean
  tag?: string
  /** The operator vouches that Django's addresses were verified: emails kept as they are count as verified. */
  emailsVerified: boolean
}

/** Why a row was skipped, in the order the report counts them. */
export const skipReasons = ['malformed', 'weak_hash', 'id_taken', 'username_taken', 'conflict'] as const
export type SkipReason = typeof skipReasons[number]
/** What was changed or is worth knowing about a row that was imported. */
export type Note = 'username_renamed' | 'username_nonconforming' | 'email_empty' | 'email_invalid' | 'email_shared' | 'unusable_password' | 'staff'

/** One row not imported as it is: skipped, or imported with changes or caveats. */
export interface ReportLine {
  id: number | null
  outcome: 'imported' | 'skipped'
  reasons: Array<SkipReason | Note>
  message: string
}

export interface ImportReport {
  dryRun: boolean
  read: number
  imported: number
  alreadyImported: number
  skipped: number
  skippedBy: Partial<Record<SkipReason, number>>
  /** Blacklisted SimpleJWT jtis copied; undefined when the source has no blacklist. */
  revokedJtis?: number
  lines: ReportLine[]
}

/** What a user row is built from: as plugins/users.ts builds it. */
const nameKeys = (username: string) => ({
  usernameKey: usernameKey(username),
  usernameSkeleton: confusableKey(username),
  usernameSkeletonLower: lowerConfusableKey(username),
  usernameSkeletonShown: shownConfusableKey(username)
})
type NameKeys = ReturnType<typeof nameKeys>
const nameColumns = ['usernameKey', 'usernameSkeleton', 'usernameSkeletonLower', 'usernameSkeletonShown'] as const

// Django's hashers without a salt, or whose salt does not save them (MD5, SHA-1, DES crypt), including the bare
// 32 hex digits of its oldest unsalted MD5. They are refused: the user resets the password by email.
const weakHash = /^(?:(unsalted_md5|unsalted_sha1|md5|sha1|crypt)\$|([0-9a-f]{32})$)/
// Django's set_unusable_password(): "!" and random characters, which no password matches.
const unusablePrefix = '!'

/** The address given to a user whose own cannot be kept: unique by id, valid, and undeliverable (RFC 2606's .invalid). */
export const placeholderEmail = (id: number) => `django-${id}@import.invalid`
/** The name given to a user whose own is taken: Django's usernames never hold '#', nor does our registration take one. */
export const renamed = (username: string, id: number) => `${username}#${id}`

/** A dumpdata entry of auth.user (or of a custom user model with its columns) as a row. */
export function fromDumpdata (entry: unknown): SourceRow {
  // readDumpdata() yields objects only.
  const { pk, fields } = entry as { pk?: unknown, fields?: Record<string, unknown> }
  const id = Number.isSafeInteger(pk) && (pk as number) > 0 ? pk as number : null
  if (id === null) return { id: null, malformed: 'no integer pk' }
  const f = fields ?? {}
  const missing = ['username', 'password', 'date_joined'].filter((name) => typeof f[name] !== 'string')
  if (missing.length > 0) return { id, malformed: `no ${missing.join(', ')}` }
  const dateJoined = new Date(f.date_joined as string)
  const lastLogin = typeof f.last_login === 'string' ? new Date(f.last_login) : null
  if (Number.isNaN(dateJoined.getTime()) || Number.isNaN(lastLogin?.getTime())) return { id, malformed: 'a date that is not one' }
  return {
    id,
    username: f.username as string,
    email: typeof f.email === 'string' ? f.email : '',
    password: f.password as string,
    dateJoined,
    lastLogin,
    isActive: f.is_active !== false,
    isStaff: f.is_staff === true,
    isSuperuser: f.is_superuser === true
  }
}

/** Groups rows into batches of batchSize. */
export async function * batches<T> (rows: AsyncIterable<T>): AsyncGenerator<T[]> {
  let batch: T[] = []
  for await (const row of rows) {
    batch.push(row)
    if (batch.length === batchSize) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

// Each batch goes to the database as one JSON parameter per statement, unpacked there by json_to_recordset: drizzle's
// builder spends some 150 ms of CPU on a 1,000-row insert of 14,000 parameters, which held the import to 3,500
// users a second; JSON.stringify takes a few milliseconds.
// Lists are compared with `= any(array(…))`, which PostgreSQL answers from the unique indexes (a BitmapOr): with
// `in (select …)` under an OR, it read the whole table for each batch.
const json = (value: unknown) => sql`${JSON.stringify(value)}::json`
/** The rows of a raw query: postgres.js answers an array of them, PGlite an object holding them. */
/* c8 ignore next: each run of the suite takes one side, the PGlite run the one, the PostgreSQL run the other */
const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[]

const userColumns = ['id', 'username', 'username_key', 'username_skeleton', 'username_skeleton_lower', 'username_skeleton_shown', 'email', 'email_key',
  'password_hash', 'email_verified', 'disabled_at', 'tag', 'last_login_at', 'created_at'] as const
const columnTypes: Partial<Record<typeof userColumns[number], string>> = {
  id: 'integer', email_verified: 'boolean', disabled_at: 'timestamptz', last_login_at: 'timestamptz', created_at: 'timestamptz'
}
const userRecord = (row: Planned['row']): Record<typeof userColumns[number], unknown> => ({
  id: row.id,
  username: row.username,
  username_key: row.usernameKey,
  username_skeleton: row.usernameSkeleton,
  username_skeleton_lower: row.usernameSkeletonLower,
  username_skeleton_shown: row.usernameSkeletonShown,
  email: row.email,
  email_key: row.emailKey,
  password_hash: row.passwordHash,
  email_verified: row.emailVerified,
  disabled_at: row.disabledAt,
  tag: row.tag,
  last_login_at: row.lastLoginAt,
  created_at: row.createdAt
})

/** A row to insert, and what the report says of it. */
interface Planned {
  row: typeof users.$inferInsert & { id: number }
  notes: Note[]
  messages: string[]
}

/**
 * Imports the users of the source, batch by batch: each batch in a transaction of its own, so that an interrupted
 * run keeps what it did and the next run goes on from there. A dry run does the same inside one transaction that
 * is rolled back, so that it reports exactly what the run would do.
 */
export async function importUsers (db: Database, source: AsyncIterable<SourceRow[]>, options: ImportOptions): Promise<ImportReport> {
  const report: ImportReport = { dryRun: options.dryRun, read: 0, imported: 0, alreadyImported: 0, skipped: 0, skippedBy: {}, lines: [] }
  const now = new Date()
  const iterator = source[Symbol.asyncIterator]()
  const next = async () => {
    const { done, value } = await iterator.next()
    return done === true ? undefined : prepareBatch(value)
  }
  await inTransactions(db, options.dryRun, async (transaction) => {
    let pending = next()
    try {
      for (let batch = await pending; batch !== undefined; batch = await pending) {
        // The next batch is read and prepared while this one is written: 30% faster than one after the other.
        pending = next()
        report.read += batch.rows
        const start = report.lines.length
        await transaction((tx) => importBatch(tx, batch!, options, report, now))
        // The batch's lines in the source's order (by id), whichever check wrote them.
        report.lines.push(...report.lines.splice(start).sort((a, b) => (a.id ?? 0) - (b.id ?? 0)))
      }
    } catch (error) {
      // Whatever the batch read ahead turns out to be, it must not become an unhandled rejection.
      await Promise.allSettled([pending])
      throw error
    }
  })
  return report
}

/** Runs work with a way to run each batch in a transaction: its own, or for a dry run a savepoint of one that is rolled back. */
async function inTransactions (db: Database, dryRun: boolean, work: (transaction: (batch: (tx: Database) => Promise<void>) => Promise<void>) => Promise<void>): Promise<void> {
  if (!dryRun) return work((batch) => db.transaction(batch))
  await db.transaction(async (outer) => {
    await work((batch) => outer.transaction(batch))
    outer.rollback()
  }).catch((error: unknown) => {
    /* c8 ignore next: an error of the dry run itself, as the run would have */
    if (!(error instanceof TransactionRollbackError)) throw error
  })
}

function skip (report: ImportReport, id: number | null, reason: SkipReason, message: string): void {
  report.skipped++
  report.skippedBy[reason] = (report.skippedBy[reason] ?? 0) + 1
  report.lines.push({ id, outcome: 'skipped', reasons: [reason], message })
}

/** A row that may be imported, with what the database does not decide about it: the names and keys it would have. */
interface Prepared {
  user: DjangoUser
  /** NFKC, as registration stores it. */
  username: string
  keys: NameKeys
  email: string
  /** Why registration would refuse the username, if it would. */
  refused?: string[]
}

interface PreparedBatch {
  rows: number
  skipped: Array<{ id: number | null, reason: SkipReason, message: string }>
  candidates: Prepared[]
}

/** What needs only the rows: the refusals that do not depend on the database, and each name's keys. */
function prepareBatch (rows: SourceRow[]): PreparedBatch {
  const batch: PreparedBatch = { rows: rows.length, skipped: [], candidates: [] }
  for (const row of rows) {
    if ('malformed' in row) {
      batch.skipped.push({ id: row.id, reason: 'malformed', message: `malformed row: ${row.malformed}` })
      continue
    }
    const weak = weakHash.exec(row.password)
    if (weak !== null) {
      batch.skipped.push({ id: row.id, reason: 'weak_hash', message: `password hash ${weak[1] ?? 'unsalted_md5 (bare)'}: refused as too weak to keep: the user is not imported` })
      continue
    }
    const username = row.username.normalize('NFKC')
    batch.candidates.push({
      user: row,
      username,
      keys: nameKeys(username),
      email: normaliseEmail(row.email.trim()),
      refused: registrationErrors({ username, email: 'someone@example.com', password: '' }).username
    })
  }
  return batch
}

async function importBatch (tx: Database, batch: PreparedBatch, options: ImportOptions, report: ImportReport, now: Date): Promise<void> {
  for (const { id, reason, message } of batch.skipped) skip(report, id, reason, message)
  const { candidates } = batch
  if (candidates.length === 0) return
  const ids = candidates.map(({ user }) => user.id)
  const imported = new Set((await tx.select({ id: importedUsers.id }).from(importedUsers).where(sql`${importedUsers.id} = any(array(select value::integer from json_array_elements_text(${json(ids)})))`)).map(({ id }) => id))
  const held = new Set((await tx.select({ id: users.id }).from(users).where(sql`${users.id} = any(array(select value::integer from json_array_elements_text(${json(ids)})))`)).map(({ id }) => id))

  // Each unique value already taken, by column, and by whom: the database's rows, then this batch's as they are planned.
  const taken = new Map<string, number>()
  const take = (column: string, value: string, id: number) => taken.set(`${column}:${value}`, id)
  const holder = (column: string, value: string) => taken.get(`${column}:${value}`)
  const nameHolder = (keys: NameKeys) => nameColumns.map((column) => holder(column, keys[column])).find((id) => id !== undefined)
  const loadTaken = async (names: NameKeys[], emails: string[]) => {
    const found = await tx.select({
      id: users.id,
      usernameKey: users.usernameKey,
      usernameSkeleton: users.usernameSkeleton,
      usernameSkeletonLower: users.usernameSkeletonLower,
      usernameSkeletonShown: users.usernameSkeletonShown,
      emailKey: users.emailKey
    }).from(users).where(or(
      ...nameColumns.map((column) => sql`${users[column]} = any(array(select json_array_elements_text(${json(names.map((keys) => keys[column]))})))`),
      sql`${users.emailKey} = any(array(select json_array_elements_text(${json(emails)})))`
    ))
    for (const row of found) {
      for (const column of nameColumns) if (row[column] !== null) take(column, row[column], row.id)
      take('emailKey', row.emailKey, row.id)
    }
  }

  const fresh: Prepared[] = []
  for (const candidate of candidates) {
    const { id } = candidate.user
    if (imported.has(id)) {
      report.alreadyImported++
    } else if (held.has(id)) {
      skip(report, id, 'id_taken', `id ${id} is held by a user who was not imported from Django`)
    } else {
      fresh.push(candidate)
    }
  }
  if (fresh.length === 0) return
  await loadTaken(fresh.map(({ keys }) => keys), fresh.filter(({ email }) => validEmail(email)).map(({ email }) => emailKey(email)))

  const planned: Planned[] = []
  const toRename: Array<{ plan: Planned, holderId: number, original: string }> = []
  for (const { user, username, keys, email, refused } of fresh) {
    const plan: Planned = {
      row: {
        id: user.id,
        username,
        ...keys,
        email,
        emailKey: emailKey(email),
        passwordHash: user.password,
        emailVerified: options.emailsVerified,
        disabledAt: user.isActive ? null : now,
        tag: options.tag ?? null,
        lastLoginAt: user.lastLogin,
        createdAt: user.dateJoined
      },
      notes: [],
      messages: []
    }
    const note = (kind: Note, message: string) => { plan.notes.push(kind); plan.messages.push(message) }
    const nameTakenBy = nameHolder(keys)
    if (nameTakenBy === undefined) {
      for (const column of nameColumns) take(column, keys[column], user.id)
      if (refused !== undefined) {
        note('username_nonconforming', `username ${JSON.stringify(username)} is one our registration refuses (${refused.join(' ')}): imported as it is` +
          (username.includes('@') ? '; with an @ in it, it cannot log in by username here, only by email' : ''))
      }
    } else {
      toRename.push({ plan, holderId: nameTakenBy, original: username })
    }
    const emailProblem = email === '' ? 'email_empty' : !validEmail(email) ? 'email_invalid' : undefined
    const emailTakenBy = emailProblem === undefined ? holder('emailKey', plan.row.emailKey) : undefined
    if (emailProblem !== undefined || emailTakenBy !== undefined) {
      const placeholder = placeholderEmail(user.id)
      const why = emailProblem === 'email_empty'
        ? 'no email'
        : emailProblem === 'email_invalid' ? `email ${JSON.stringify(email)} is not a valid address` : `email shared with user ${emailTakenBy}`
      note(emailProblem ?? 'email_shared', `${why}: imported with the undeliverable placeholder ${placeholder}; the user logs in by username and should set an address`)
      Object.assign(plan.row, { email: placeholder, emailKey: placeholder, emailVerified: false })
    } else {
      take('emailKey', plan.row.emailKey, user.id)
    }
    if (user.password === '' || user.password.startsWith(unusablePrefix)) {
      note('unusable_password', 'unusable password: imported as it is, which no password matches; the user resets it by email')
    }
    if (user.isStaff || user.isSuperuser) note('staff', 'staff/superuser: not mapped')
    planned.push(plan)
  }

  // Renames: a name with '#' is new to the database, unless an earlier run gave it; look those up, then settle.
  if (toRename.length > 0) {
    const renames = toRename.map(({ plan, original }) => nameKeys(renamed(original, plan.row.id)))
    await loadTaken(renames, [])
    toRename.forEach(({ plan, holderId, original }, index) => {
      const keys = renames[index] as NameKeys
      const rename = renamed(original, plan.row.id)
      if (nameHolder(keys) !== undefined) {
        planned.splice(planned.indexOf(plan), 1)
        skip(report, plan.row.id, 'username_taken', `username ${JSON.stringify(original)} is taken by user ${holderId}, and so is ${JSON.stringify(rename)}`)
        return
      }
      for (const column of nameColumns) take(column, keys[column], plan.row.id)
      Object.assign(plan.row, { username: rename, ...keys })
      plan.notes.unshift('username_renamed')
      plan.messages.unshift(`username ${JSON.stringify(original)} is taken by user ${holderId} (the same once case-folded, or a look-alike): imported as ${JSON.stringify(rename)}`)
    })
  }
  if (planned.length === 0) return

  const inserted = new Set(rowsOf<{ id: number }>(await tx.execute(sql`
    insert into users (${sql.raw(userColumns.join(', '))}) overriding system value
    select ${sql.raw(userColumns.join(', '))} from json_to_recordset(${json(planned.map(({ row }) => userRecord(row)))})
      as r(${sql.raw(userColumns.map((column) => `${column} ${columnTypes[column] ?? 'text'}`).join(', '))})
    on conflict do nothing
    returning id`)).map(({ id }) => id))
  for (const plan of planned) {
    /* c8 ignore next 4: a user registered between the checks above and this insert took one of the row's unique values */
    if (!inserted.has(plan.row.id)) {
      skip(report, plan.row.id, 'conflict', 'a user registered during the import took its id, username or email; run the import again')
      continue
    }
    report.imported++
    if (plan.notes.length > 0) report.lines.push({ id: plan.row.id, outcome: 'imported', reasons: plan.notes, message: plan.messages.join('; ') })
  }
  await tx.execute(sql`insert into imported_users (id, imported_at)
    select value::integer, ${now.toISOString()}::timestamptz from json_array_elements_text(${json([...inserted])})`)
  if (!report.dryRun) await moveIdentityPast(tx, Math.max(0, ...inserted))
}

/**
 * Moves the users' identity sequence past id, never back: a registration then gets a higher id than every imported
 * user. setval is not transactional, hence never in a dry run.
 */
export async function moveIdentityPast (db: Database, id: number): Promise<void> {
  await db.execute(sql`select setval(seq, greatest(${id}::bigint, coalesce(pg_sequence_last_value(seq), 0)))
    from (select pg_get_serial_sequence('users', 'id')::regclass as seq) as identity`)
}

/**
 * Copies SimpleJWT's blacklisted jtis, as hex SHA-256, with their tokens' expiry; those already copied are left.
 * Answers how many the source holds.
 */
export async function importRevokedJtis (db: Database, source: AsyncIterable<Array<{ jti: string, expiresAt: Date }>>, dryRun: boolean): Promise<number> {
  let count = 0
  for await (const rows of source) {
    count += rows.length
    if (dryRun) continue
    await db.insert(legacyRevokedJtis)
      .values(rows.map(({ jti, expiresAt }) => ({ jtiHash: createHash('sha256').update(jti).digest('hex'), expiresAt })))
      .onConflictDoNothing()
  }
  return count
}
