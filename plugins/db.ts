import fp from 'fastify-plugin'
import { openDatabase, type Database, type DatabaseOptions, type Listen, type Query } from '../src/db/connect.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
    /** One statement of fixed text, prepared: for the hot paths only; drizzle everywhere else. */
    sqlQuery: Query
    /** LISTEN for NOTIFY on the same database. */
    notifications: { listen: Listen }
  }
}

export default fp<DatabaseOptions>(async (fastify, options) => {
  const connection = await openDatabase(options)
  fastify.log.info({ database: connection.kind }, 'database ready')
  fastify.decorate('db', connection.db)
  fastify.decorate('sqlQuery', connection.query)
  fastify.decorate('notifications', { listen: connection.listen })
  fastify.addHook('onClose', () => connection.close())
}, { name: 'db' })
