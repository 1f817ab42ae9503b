// npm run db:migrate: applies pending migrations to the configured database, then exits.
import { openDatabase } from '../db/connect.js'
import { ConfigError, loadConfig } from '../config.js'

try {
  const config = loadConfig()
  const connection = await openDatabase(config)
  await connection.close()
  console.log(`migrations applied (${connection.kind})`)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}
