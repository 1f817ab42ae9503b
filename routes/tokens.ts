import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody, RefreshBody, TokenPair, bodyErrors, throttledErrors } from '../src/schemas.js'

const tokenRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { sessions } = fastify

  fastify.post('/auth/refresh/', {
    onRequest: fastify.throttle.refresh,
    schema: { tags: ['tokens'], summary: 'Rotate a refresh token: a new pair; the old refresh token is spent', body: RefreshBody, response: { 200: TokenPair, 401: ErrorBody, ...bodyErrors, ...throttledErrors } }
  }, async (request) => sessions.refresh(request.body.refresh))

  fastify.post('/auth/logout/', {
    schema: { tags: ['tokens'], summary: 'Log out: revoke the session of a refresh token', body: RefreshBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors } }
  }, async (request, reply) => {
    await sessions.logout(request.body.refresh)
    return reply.code(204).send(null)
  })
}

export default tokenRoutes
