import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { tokenError } from '../src/errors.js'
import { ErrorBody, User } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { users } = fastify

  fastify.get('/auth/me/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'The current user', security: [{ bearerAuth: [] }], response: { 200: User, 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const user = await users.profile(request.user.user_id)
    if (user === undefined) throw tokenError('token_invalid', 'User not found')
    return user
  })
}

export default me
