// npm run db:purge: deletes expired tokens and sessions once, then exits.
import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from '../db/connect.js'
import { purgeExpired } from '../db/purge-expired.js'

try {
  const connection = await openDatabase(loadConfig())
  const purged = await purgeExpired(connection.db)
  await connection.close()
  console.log(`purged ${purged.tokens} expired tokens and ${purged.sessions} expired sessions (${connection.kind}); ${purged.mailTokens} mailed tokens and ${purged.mails} mails`)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}
