import fp from 'fastify-plugin'
import { openDatabase, type Database, type DatabaseOptions } from '../src/db/connect.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
  }
}

export default fp<DatabaseOptions>(async (fastify, options) => {
  const connection = await openDatabase(options)
  fastify.log.info({ database: connection.kind }, 'database ready')
  fastify.decorate('db', connection.db)
  fastify.addHook('onClose', () => connection.close())
}, { name: 'db' })
