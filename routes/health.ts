import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sql } from 'drizzle-orm'
import { Health } from '../src/schemas.js'

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', { schema: { response: { 200: Health, 503: Health } } }, async (request, reply) => {
    try {
      await fastify.db.execute(sql`select 1`)
      return { status: 'ok' as const }
    } catch (error) {
      request.log.warn({ err: error }, 'health check: database unavailable')
      return reply.code(503).send({ status: 'unavailable' })
    }
  })
}

export default health
