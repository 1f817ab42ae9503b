// npm run db:purge: deletes expired tokens, sessions, mails and audit events once, then exits.
import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from '../db/connect.js'
import { purgeExpired } from '../db/purge-expired.js'

try {
  const config = loadConfig()
  const connection = await openDatabase(config)
  const purged = await purgeExpired(connection.db, { auditRetention: config.auditRetention })
  await connection.close()
  console.log(`purged ${purged.tokens} expired tokens and ${purged.sessions} expired sessions (${connection.kind}); ${purged.mailTokens} mailed tokens, ${purged.mails} mails and ${purged.events} audit events`)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}
