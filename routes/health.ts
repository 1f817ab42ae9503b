import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { integer, pgSchema } from 'drizzle-orm/pg-core'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { migrationsFolder } from '../src/paths.js'
import { Health } from '../src/schemas.js'

// drizzle's own record of applied migrations; declared here, not in the schema drizzle-kit reads.
const appliedMigrations = pgSchema('drizzle').table('__drizzle_migrations', { id: integer('id') })

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  const journal = JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
  const schema = { tags: ['health'], summary: 'Readiness: the database answers and migrations are applied; 503 otherwise', response: { 200: Health, 503: Health } }

  // Liveness: the process answers.
  fastify.get('/health/live', { schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: Health } } }, async () => ({ status: 'ok' as const }))

  // Readiness: the database answers and every migration this build ships is applied.
  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const applied = await fastify.db.$count(appliedMigrations)
      if (applied >= journal.entries.length) return { status: 'ok' as const }
      request.log.warn({ applied, expected: journal.entries.length }, 'health check: migrations pending')
    } catch (error) {
      request.log.warn({ err: error }, 'health check: database unavailable')
    }
    return reply.code(503).send({ status: 'unavailable' })
  }
  fastify.get('/health/ready', { schema }, ready)
  fastify.get('/health', { schema: { ...schema, summary: 'The same as /health/ready' } }, ready)
}

export default health
