import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/**
 * The OpenAPI 3.1 description, generated from the route schemas, at /openapi.json, and the interactive
 * reference at /docs, served from the package's own assets: the page loads nothing from the internet.
 * Registered before the routes, so that it sees every one of them.
 */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Auth service',
        version: '1.0.0',
        description: 'Registration, login, and JWT access and refresh tokens (EdDSA), each stored and checked on every use. ' +
          'Errors are `{statusCode, error, code, message}`, plus `errors` per field for invalid input.'
      },
      tags: [
        { name: 'auth', description: 'Registration, login and the current user' },
        { name: 'tokens', description: 'Refresh, logout and token checks' },
        { name: 'sessions', description: 'A user\'s logins, and revoking them' },
        { name: 'email', description: 'Proving and changing the email address (password reset is under auth)' },
        { name: 'keys', description: 'The public keys that verify tokens' },
        { name: 'health', description: 'For load balancers and orchestrators' },
        { name: 'admin', description: 'For operators, with ADMIN_TOKEN: users, cohorts for load tests, sessions' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from login or refresh' },
          introspectionSecret: { type: 'http', scheme: 'bearer', description: 'INTROSPECTION_SECRET, when the service sets one' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN; without it every /admin/ path answers 404' }
        }
      }
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: true, tryItOutEnabled: true } })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'docs' })
