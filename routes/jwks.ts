import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Jwks } from '../src/schemas.js'

const jwks: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/.well-known/jwks.json', { schema: { tags: ['keys'], summary: 'The public keys (JWKS) that verify tokens', response: { 200: Jwks } } }, async (request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return fastify.tokenService.jwks
  })
}

export default jwks
