import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import { privateTree, secureDataDir } from '../data-dir.js'
import { migrationsFolder } from '../paths.js'
import type { DatabaseConnection } from './connect.js'
import * as schema from './schema.js'

/** PGlite stored in dataDir/pglite: one process at a time. */
export async function openPglite (dataDir: string): Promise<DatabaseConnection> {
  await secureDataDir(dataDir)
  // PostgreSQL's default 128 MB of shared buffers would make up most of the process's memory; the
  // embedded database serves one process, and 16 MB keeps its resident set near 180 MB.
  const client = await PGlite.create(join(dataDir, 'pglite'), { startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'] })
  const db = drizzle({ client, schema })
  await migrate(db, { migrationsFolder })
  // Files PGlite made since the last start, such as a new WAL segment, were made 0666.
  await privateTree(join(dataDir, 'pglite'))
  return {
    db,
    query: async <T>(text: string, params: unknown[]) => (await client.query<T>(text, params)).rows,
    kind: 'pglite',
    // One process owns the database, so the subscription is never lost.
    async listen (channel, onNotify, onConnect) {
      const unsubscribe = await client.listen(channel, onNotify)
      await onConnect()
      return async () => { if (!client.closed) await unsubscribe() }
    },
    close: async () => { if (!client.closed) await client.close() }
  }
}
