import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eq } from 'drizzle-orm'
import { users } from '../src/db/schema.js'
import { tokenError } from '../src/errors.js'
import { ErrorBody, User, toUser } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify

  fastify.get('/auth/me/', {
    onRequest: fastify.authenticate,
    schema: { response: { 200: User, 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const [user] = await db.select().from(users).where(eq(users.id, request.user.user_id))
    if (user === undefined) throw tokenError('token_invalid', 'User not found')
    return toUser(user)
  })
}

export default me
