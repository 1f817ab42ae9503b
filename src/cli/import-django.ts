// npm run import:django -- --from postgres://…/olddb: brings a Django service's users over, ids and password hashes kept.
//   npm run import:django -- --from postgres://postgres@127.0.0.1/olddb --dry-run
//   npm run import:django -- --from users.json --tag django --report import.json   (users.json: manage.py dumpdata auth.user)
import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { loadConfig } from '../config.js'
import { openDatabase } from '../db/connect.js'
import { readDumpdata } from '../django/dumpdata.js'
import { batches, batchSize, fromDumpdata, importRevokedJtis, importUsers, moveIdentityPast, skipReasons, type ImportReport, type SourceRow } from '../django/import-users.js'

type Output = { write: (text: string) => unknown }

const usage = `usage: npm run import:django -- --from <postgres://…/olddb | users.json> [--table auth_user] [--dry-run]
  [--tag <tag>] [--emails-verified] [--report <file.json>]`

/** The command line, or a message saying what is wrong with it. */
export function parseOptions (args: string[]): { from: string, table: string, dryRun: boolean, tag?: string, emailsVerified: boolean, report?: string } | string {
  let values
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        from: { type: 'string' },
        table: { type: 'string', default: 'auth_user' },
        'dry-run': { type: 'boolean', default: false },
        tag: { type: 'string' },
        'emails-verified': { type: 'boolean', default: false },
        report: { type: 'string' }
      }
    }).values
  } catch (error) {
    return `${(error as Error).message}\n${usage}`
  }
  if (values.from === undefined) return `--from is required\n${usage}`
  if (values.tag !== undefined && (values.tag.length < 1 || values.tag.length > 64 || values.tag.includes('\0'))) {
    return '--tag: 1 to 64 characters, as the admin API takes'
  }
  return { from: values.from, table: values.table, dryRun: values['dry-run'], tag: values.tag, emailsVerified: values['emails-verified'], report: values.report }
}

const isDatabaseUrl = (from: string) => /^postgres(?:ql)?:\/\//.test(from)

/** The source as the report names it: a URL without its password. */
function sourceName (from: string, table: string): string {
  if (!isDatabaseUrl(from)) return from
  const url = new URL(from)
  url.password = ''
  return `${url.toString()} (table ${table})`
}

/** The report as text: the counts, then one line per row not imported as it is. The password hashes are never in it. */
export function formatReport (report: ImportReport, source: string): string {
  const skippedBy = skipReasons.filter((reason) => report.skippedBy[reason] !== undefined).map((reason) => `${reason} ${report.skippedBy[reason]}`).join(', ')
  const lines = [
    `${report.dryRun ? 'Dry run (nothing written): ' : ''}import from ${source}`,
    `read ${report.read}, imported ${report.imported}, already imported ${report.alreadyImported}, skipped ${report.skipped}${skippedBy === '' ? '' : ` (${skippedBy})`}`,
    ...(report.revokedJtis === undefined ? [] : [`blacklisted SimpleJWT tokens: ${report.revokedJtis}`]),
    ...report.lines.map((line) => `${line.id === null ? 'no id' : `id ${line.id}`}: ${line.outcome}: ${line.message}`)
  ]
  return `${lines.join('\n')}\n`
}

/** The rows of a Django database's user table, by id, read through a cursor. */
async function * databaseRows (sql: postgres.Sql, table: string): AsyncGenerator<SourceRow[]> {
  const cursor = sql`select id, username, coalesce(email, '') as email, password, date_joined, last_login, is_active, is_staff, is_superuser
    from ${sql(table)} order by id`.cursor(batchSize)
  for await (const rows of cursor) {
    yield rows.map((row) => ({
      id: row.id,
      username: row.username,
      email: row.email,
      password: row.password,
      dateJoined: row.date_joined,
      lastLogin: row.last_login,
      isActive: row.is_active,
      isStaff: row.is_staff,
      isSuperuser: row.is_superuser
    }))
  }
}

/** SimpleJWT's blacklisted refresh tokens, when its token_blacklist app is installed. */
async function * blacklistedJtis (sql: postgres.Sql): AsyncGenerator<Array<{ jti: string, expiresAt: Date }>> {
  yield * sql<Array<{ jti: string, expiresAt: Date }>>`select o.jti, o.expires_at as "expiresAt"
    from token_blacklist_blacklistedtoken b join token_blacklist_outstandingtoken o on o.id = b.token_id order by b.id`.cursor(batchSize)
}

/** The command: the report on stdout, exit 0 when every row was imported (or had been), 1 otherwise. */
export async function main (
  args: string[],
  environment: Record<string, string | undefined> = process.env,
  output: Output = process.stdout,
  errors: Output = process.stderr
): Promise<number> {
  const options = parseOptions(args)
  if (typeof options === 'string') {
    errors.write(`${options}\n`)
    return 1
  }
  let connection
  let source: postgres.Sql | undefined
  let code: number
  try {
    connection = await openDatabase(loadConfig(environment))
    const { db } = connection
    let report: ImportReport
    if (isDatabaseUrl(options.from)) {
      source = postgres(options.from, { max: 1 })
      // Past the highest Django id at once, so that no registration during the import takes an id it brings.
      const [{ max }] = await source<[{ max: number | null }]>`select max(id) as max from ${source(options.table)}`
      if (!options.dryRun && max !== null) await moveIdentityPast(db, max)
      report = await importUsers(db, databaseRows(source, options.table), options)
      const [{ exists }] = await source<[{ exists: boolean }]>`select to_regclass('token_blacklist_blacklistedtoken') is not null as exists`
      if (exists) report.revokedJtis = await importRevokedJtis(db, blacklistedJtis(source), options.dryRun)
    } else {
      const stream = createReadStream(options.from, { encoding: 'utf8' })
      report = await importUsers(db, batches(mapRows(readDumpdata(stream))), options)
    }
    output.write(formatReport(report, sourceName(options.from, options.table)))
    if (options.report !== undefined) await writeFile(options.report, `${JSON.stringify({ source: sourceName(options.from, options.table), ...report }, null, 2)}\n`)
    code = report.skipped === 0 ? 0 : 1
  } catch (error) {
    // A ConfigError's message lists each bad variable; others are a file or a database that cannot be read.
    errors.write(`${(error as Error).message}\n`)
    code = 1
  }
  if (source !== undefined) await source.end()
  if (connection !== undefined) await connection.close()
  return code
}

async function * mapRows (entries: AsyncIterable<unknown>): AsyncGenerator<SourceRow> {
  for await (const entry of entries) yield fromDumpdata(entry)
}

/* c8 ignore next 3: runs only as the entry point, which `npm run import:django` starts */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2))
}
