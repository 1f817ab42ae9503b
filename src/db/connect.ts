import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type * as schema from './schema.js'

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>

export interface DatabaseOptions {
  /** postgres.js connection string; without it, PGlite stored under dataDir. */
  databaseUrl?: string
  /** postgres.js pool size. */
  databasePoolSize: number
  dataDir: string
}

/**
 * Subscribes to NOTIFY on a channel. onConnect runs once the subscription is live, and again each
 * time it is re-established after a lost connection, when notifications may have been missed.
 * Resolves, after the first onConnect has finished, to a function that unsubscribes.
 */
export type Listen = (channel: string, onNotify: (payload: string) => void, onConnect: () => Promise<void>) => Promise<() => Promise<void>>

/**
 * Runs one statement of fixed text, prepared, with its parameters bound; answers its rows. For the hottest
 * statements, where building the query with drizzle costs the event loop more than the database's own work.
 * Parameters are strings, numbers or null (a time as its ISO string): drizzle's postgres.js client serialises no Date.
 */
export type Query = <T>(text: string, params: unknown[]) => Promise<T[]>

export interface DatabaseConnection {
  db: Database
  query: Query
  kind: 'postgres' | 'pglite'
  listen: Listen
  close: () => Promise<void>
}

/**
 * Opens the database and applies pending migrations. Each driver is loaded only when used,
 * so the embedded setup never loads postgres.js, nor a PostgreSQL setup the WASM build.
 */
export async function openDatabase (options: DatabaseOptions): Promise<DatabaseConnection> {
  if (options.databaseUrl === undefined) {
    const { openPglite } = await import('./pglite.js')
    return openPglite(options.dataDir)
  /* c8 ignore start: taken on the suite's PostgreSQL run; the PGlite run must pass without a server */
  }
  const { openPostgres } = await import('./postgres.js')
  return openPostgres(options.databaseUrl, options.databasePoolSize)
}
/* c8 ignore stop */

/**
 * Runs a query as a prepared statement. drizzle sends other queries unprepared, and postgres.js then
 * describes each one with parameters first: two round trips, and a parse and plan every time.
 * postgres.js keeps prepared statements per connection, keyed by their text, so a query built anew in
 * each transaction is parsed once per connection and then costs one round trip. The name is unused.
 * Only for SQL of a fixed shape: a list of varying length (inArray) would leave a statement per length on
 * every connection. A pooler that cannot hold prepared statements needs `?prepare=false` in DATABASE_URL.
 */
export function prepared<T> (query: { prepare: (name: string) => { execute: () => Promise<T> } }): Promise<T> {
  return query.prepare('').execute()
}
