// The embedded database's own resident size at idle: the RSS this process gains by loading PGlite, opening the
// migrated database the service will use, and answering one query. On PGlite the memory goal is counted above it.
import { openPglite } from '../src/db/pglite.js'

const { dataDir } = JSON.parse(process.argv[2]!) as { dataDir: string }
const before = process.memoryUsage.rss()
const connection = await openPglite(dataDir)
await connection.query('select count(*) from users', [])
const bytes = process.memoryUsage.rss() - before
await connection.close()
process.send!({ bytes }, () => process.disconnect())
