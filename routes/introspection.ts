import { createHash, timingSafeEqual } from 'node:crypto'
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { messages, notAuthenticated } from '../src/errors.js'
import { ErrorBody, TokenBody, bodyErrors, throttledErrors } from '../src/schemas.js'

export interface IntrospectionOptions {
  /** When set, introspection callers must present it as a Bearer token. */
  introspectionSecret?: string
}

const Introspection = Type.Object({
  active: Type.Boolean(),
  sub: Type.Optional(Type.String()),
  sid: Type.Optional(Type.String()),
  jti: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.String()),
  token_type: Type.Optional(Type.String()),
  username: Type.Optional(Type.String())
})

const digest = (text: string) => createHash('sha256').update(text).digest()

/** Token checks for other services: SimpleJWT's verify, and RFC 7662 introspection. */
const introspection: FastifyPluginAsyncTypebox<IntrospectionOptions> = async (fastify, { introspectionSecret }) => {
  const { tokenService, sessionManager } = fastify
  // RFC 7662 callers send application/x-www-form-urlencoded; only these routes accept it.
  await fastify.register(formbody)

  /** The claims and username of a live token, as every check here sees it; throws a 401 otherwise, logged. */
  async function inspect (request: FastifyRequest, token: string) {
    try {
      const claims = tokenService.verify(token)
      if (claims.token_type === 'access') return tokenService.verifyAccess(token)
      return { ...claims, username: await sessionManager.inspectRefresh(claims, token) }
    } catch (error) {
      const { statusCode, code } = error as { statusCode?: number, code?: string }
      if (statusCode === 401) request.log.info({ route: request.routeOptions.url, code, client: request.ip }, 'token check failed')
      throw error
    }
  }

  // SimpleJWT's TokenVerifyView's default path too.
  for (const path of ['/auth/verify/', '/api/token/verify/']) {
    fastify.post(path, {
      onRequest: fastify.throttle.verify,
      schema: { tags: ['tokens'], summary: 'Verify a token: 200 if it is valid now', body: TokenBody, response: { 200: Type.Object({}), 401: ErrorBody, ...bodyErrors, ...throttledErrors } }
    }, async (request) => {
      await inspect(request, request.body.token)
      return {}
    })
  }

  const expected = introspectionSecret === undefined ? undefined : digest(introspectionSecret)
  async function checkCaller (request: FastifyRequest) {
    if (expected === undefined) return
    const presented = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? ''
    if (!timingSafeEqual(digest(presented), expected)) {
      throw notAuthenticated(messages.introspectionSecret, 'introspection')
    }
  }

  fastify.post('/auth/introspect/', {
    onRequest: [fastify.throttle.introspect, checkCaller],
    schema: { tags: ['tokens'], summary: 'Introspect a token (RFC 7662)', security: [{}, { introspectionSecret: [] }], body: TokenBody, response: { 200: Introspection, 401: ErrorBody, ...bodyErrors, ...throttledErrors } }
  }, async (request) => {
    try {
      const { sub, sid, jti, exp, iat, iss, aud, token_type: tokenType, username } = await inspect(request, request.body.token)
      return { active: true, sub, sid, jti, exp, iat, iss, aud, token_type: tokenType, username }
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 401) throw error
      return { active: false }
    }
  })
}

export default introspection
