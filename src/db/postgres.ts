import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { migrationsFolder } from '../paths.js'
import type { DatabaseConnection } from './connect.js'
import * as schema from './schema.js'

/* c8 ignore next: swallows only what onConnect has already logged */
const ignore = () => {}

// Any constant works: it only has to be the same for every instance migrating one database.
const migrationLockId = 7_210_301

export async function openPostgres (databaseUrl: string, poolSize: number): Promise<DatabaseConnection> {
  // Migrate on a single connection holding an advisory lock, so instances starting together take turns.
  const migrationClient = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await migrationClient`select pg_advisory_lock(${migrationLockId})`
    await migrate(drizzle({ client: migrationClient }), { migrationsFolder })
  } finally {
    await migrationClient.end()
  }
  const client = postgres(databaseUrl, { max: poolSize })
  return {
    db: drizzle({ client, schema }),
    // Prepared once per connection, keyed by its text, as postgres.js prepares its tagged templates.
    query: async <T>(text: string, params: unknown[]) => await client.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }) as unknown as T[],
    kind: 'postgres',
    // postgres.js listens on a connection of its own and re-listens whenever it is lost, calling
    // onlisten each time. A failed resync is reported by onConnect itself; only the first is awaited.
    async listen (channel, onNotify, onConnect) {
      let connected = Promise.resolve()
      const subscription = await client.listen(channel, onNotify, () => {
        connected = onConnect()
        connected.catch(ignore)
      })
      await connected
      // At close, after the client has ended (an outage, or a test's closeDatabase), there is nothing to unlisten:
      // the rejection would abort the app's close half-way.
      return () => subscription.unlisten().catch(ignore)
    },
    close: () => client.end()
  }
}
