import cors from '@fastify/cors'
import sensible from '@fastify/sensible'
import type { FastifyError, FastifyPluginAsync, onSendHookHandler } from 'fastify'
import accountMail from '../plugins/account-mail.js'
import accounts from '../plugins/accounts.js'
import audit from '../plugins/audit.js'
import db from '../plugins/db.js'
import deviceTokens from '../plugins/device-tokens.js'
import docs from '../plugins/docs.js'
import mailTokens from '../plugins/mail-tokens.js'
import mailer from '../plugins/mailer.js'
import metrics from '../plugins/metrics.js'
import password from '../plugins/password.js'
import purgeSchedule from '../plugins/purge-schedule.js'
import reauthenticate from '../plugins/reauthenticate.js'
import redis from '../plugins/redis.js'
import revocations from '../plugins/revocations.js'
import sessions from '../plugins/sessions.js'
import throttle from '../plugins/throttle.js'
import tokens from '../plugins/tokens.js'
import users from '../plugins/users.js'
import webhooks from '../plugins/webhooks.js'
import adminRoutes from '../routes/admin.js'
import authRoutes from '../routes/auth.js'
import emailRoutes from '../routes/email.js'
import healthRoutes from '../routes/health.js'
import jwksRoutes from '../routes/jwks.js'
import meRoutes from '../routes/me.js'
import tokenRoutes from '../routes/tokens.js'
import introspectionRoutes from '../routes/introspection.js'
import passwordRoutes from '../routes/password.js'
import sessionRoutes from '../routes/sessions.js'
import type { PrimaryChannel } from './cluster-metrics.js'
import type { Config } from './config.js'
import { codeForStatus, errorBody, isErrorCode, messages } from './errors.js'
import { secureDataDir } from './data-dir.js'
import { loadOrCreateSigningKey } from './keys.js'
import { validationErrors } from './validation.js'

export interface AppOptions {
  config: Config
  /** In a worker of WEB_CONCURRENCY, the channel to its primary, which gathers every worker's metrics. */
  primary?: PrimaryChannel
}

/** The whole service as one plugin; register it wrapped in fastify-plugin. */
const app: FastifyPluginAsync<AppOptions> = async (fastify, { config, primary }) => {
  // DATA_DIR is used for the embedded database and for a signing key kept there.
  if (config.signingKey === undefined || config.databaseUrl === undefined) {
    if (await secureDataDir(config.dataDir) === 'tightened') {
      fastify.log.warn({ dataDir: config.dataDir }, 'DATA_DIR was open to other users: its mode is now 0700')
    }
  }
  await fastify.register(sensible)
  await fastify.register(db, {
    databaseUrl: config.databaseUrl,
    databasePoolSize: config.databasePoolSize,
    dataDir: config.dataDir
  })
  await fastify.register(password, { concurrency: config.hashConcurrency, queue: config.hashQueue })
  await fastify.register(users)
  await fastify.register(revocations, { accessTokenTtl: config.accessTokenTtl })
  const signingKey = config.signingKey ?? await loadOrCreateSigningKey(config.dataDir)
  await fastify.register(deviceTokens, { signingKey })
  await fastify.register(tokens, {
    signingKey,
    previousPublicKeys: config.previousPublicKeys,
    accessTokenTtl: config.accessTokenTtl,
    refreshTokenTtl: config.refreshTokenTtl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    tokenCacheSize: config.tokenCacheSize
  })
  await fastify.register(metrics, { metricsToken: config.metricsToken, primary })
  await fastify.register(audit)
  await fastify.register(webhooks, { webhooks: config.webhooks })
  await fastify.register(sessions, { sessionMaxAge: config.sessionMaxAge, refreshReuseGrace: config.refreshReuseGrace, legacyJwt: config.legacyJwt })
  await fastify.register(mailTokens, { signingKey })
  await fastify.register(mailer, { mail: config.mail, dataDir: config.dataDir })
  await fastify.register(accountMail, { mail: config.mail })
  await fastify.register(accounts)
  await fastify.register(purgeSchedule, { purgeInterval: config.purgeInterval, auditRetention: config.auditRetention })
  // Redis holds only the throttle's counters: with RATE_LIMIT=off (and for user:create) it is not needed.
  if (config.redisUrl !== undefined && config.rateLimit) await fastify.register(redis, { redisUrl: config.redisUrl })
  await fastify.register(throttle, { enabled: config.rateLimit, limits: config.limits, redisKeyPrefix: config.redisKeyPrefix, exempt: config.rateLimitExempt })
  await fastify.register(reauthenticate)

  // JSON only: Fastify's built-in text/plain parser would hand strings to the JSON schemas.
  fastify.removeContentTypeParser('text/plain')

  // Set on the way in, so that every answer carries them, errors too.
  const hsts = 'max-age=31536000; includeSubDomains'
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff')
    if (config.hsts) reply.header('strict-transport-security', hsts)
    done()
  })
  // Answers of the /auth/ and /admin/ routes hold tokens and personal data: never stored. Decided by the route matched, not
  // the raw URL, which may spell the same path differently (`/%61uth/login/`); on the way out, so that an answer
  // of any hook (a 401, a 429) carries it too.
  const noStore: onSendHookHandler = (request, reply, payload, done) => {
    reply.header('cache-control', 'no-store')
    done(null, payload)
  }
  fastify.addHook('onRoute', (route) => {
    if (route.url.startsWith('/auth/') || route.url.startsWith('/admin/')) route.onSend = [noStore, ...[route.onSend ?? []].flat()]
  })
  // Without an allowlist no CORS header is ever sent, so browsers keep other origins out.
  if (config.corsOrigins.length > 0) {
    await fastify.register(cors, { origin: config.corsOrigins, methods: ['GET', 'POST', 'DELETE'], maxAge: 600 })
  }

  fastify.setErrorHandler((error: FastifyError & { headers?: Record<string, string>, errors?: Record<string, string[]> }, request, reply) => {
    if (error.validation) {
      return reply.code(400).send(errorBody(400, 'invalid_request', messages.invalidInput, validationErrors(error.validation)))
    }
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    // Our own 5xx errors (a full hashing queue) are answers; any other 5xx is a failure.
    if (statusCode >= 500 && !(statusCode === 503 && error.code === 'service_unavailable')) {
      // Drizzle's message quotes the query's parameters, password and token hashes among them: keep
      // the SQL, the driver's own message and the stack frames only.
      request.log.error({
        err: {
          type: error.name,
          message: error.message.split('\nparams:')[0],
          cause: String(error.cause),
          stack: String(error.stack).split('\n').filter((line) => line.trimStart().startsWith('at ')).join('\n')
        }
      }, 'request failed')
      return reply.code(500).send(errorBody(500, 'internal_error', messages.internalError))
    }
    if (statusCode === 503) request.log.warn({ route: request.routeOptions.url, client: request.ip }, 'password hashing busy: 503')
    if (error.headers) reply.headers(error.headers)
    const code = isErrorCode(error.code) ? error.code : codeForStatus[statusCode] ?? 'invalid_request'
    return reply.code(statusCode).send(errorBody(statusCode, code, error.message, error.errors))
  })

  fastify.setNotFoundHandler((request, reply) => reply.code(404).header('cache-control', 'no-store')
    .send(errorBody(404, 'not_found', messages.routeNotFound(request.method, request.url))))

  await fastify.register(docs)
  await fastify.register(authRoutes, { requireVerifiedEmail: config.requireVerifiedEmail })
  await fastify.register(emailRoutes)
  await fastify.register(tokenRoutes)
  await fastify.register(sessionRoutes)
  await fastify.register(passwordRoutes)
  await fastify.register(introspectionRoutes, { introspectionSecret: config.introspectionSecret })
  await fastify.register(meRoutes)
  await fastify.register(jwksRoutes)
  await fastify.register(healthRoutes)
  await fastify.register(adminRoutes, { adminToken: config.adminToken })
}

export default app
