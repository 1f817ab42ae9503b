import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { migrationsFolder } from '../paths.js'
import * as schema from './schema.js'

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>

export interface DatabaseOptions {
  /** postgres.js connection string; without it, PGlite stored under dataDir. */
  databaseUrl?: string
  dataDir: string
  /** postgres.js pool size. */
  databasePoolSize: number
}

export interface DatabaseConnection {
  db: Database
  kind: 'postgres' | 'pglite'
  close: () => Promise<void>
}

// Any constant works: it only has to be the same for every instance migrating one database.
const migrationLockId = 7_210_301

/** Opens the database and applies pending migrations. */
export async function openDatabase (options: DatabaseOptions): Promise<DatabaseConnection> {
  if (options.databaseUrl === undefined) {
    await mkdir(options.dataDir, { recursive: true })
    const client = await PGlite.create(join(options.dataDir, 'pglite'))
    const db = drizzlePglite({ client, schema })
    await migratePglite(db, { migrationsFolder })
    return { db, kind: 'pglite', close: async () => { if (!client.closed) await client.close() } }
  }

  // Migrate on a single connection holding an advisory lock, so instances starting together take turns.
  const migrationClient = postgres(options.databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await migrationClient`select pg_advisory_lock(${migrationLockId})`
    await migratePostgres(drizzlePostgres({ client: migrationClient }), { migrationsFolder })
  } finally {
    await migrationClient.end()
  }
  const client = postgres(options.databaseUrl, { max: options.databasePoolSize })
  return { db: drizzlePostgres({ client, schema }), kind: 'postgres', close: () => client.end() }
}
