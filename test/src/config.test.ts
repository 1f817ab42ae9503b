import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { ConfigError, loadConfig, openSurfaces, parseDuration } from '../../src/config.js'

const pem = (key: KeyObject, type: 'pkcs8' | 'spki') => key.export({ format: 'pem', type: type as 'pkcs8' }) as string
const ed25519 = generateKeyPairSync('ed25519')
const previousOne = generateKeyPairSync('ed25519')
const previousTwo = generateKeyPairSync('ed25519')
const webhookSecret = `whsec_${Buffer.from('a webhook key of 24 bytes').toString('base64')}`

function configError (environment: Record<string, string>): ConfigError {
  try {
    loadConfig(environment)
  } catch (error) {
    if (error instanceof ConfigError) return error
  }
  throw new Error(`no ConfigError for ${JSON.stringify(environment)}`)
}

t.test('defaults', async (t) => {
  t.same(loadConfig({}), {
    port: 3000,
    host: '127.0.0.1',
    databaseUrl: undefined,
    databasePoolSize: 10,
    webConcurrency: 1,
    dataDir: './data',
    accessTokenTtl: 900,
    refreshTokenTtl: 30 * 86400,
    sessionMaxAge: 90 * 86400,
    refreshReuseGrace: 10,
    purgeInterval: 3600,
    tokenCacheSize: 10000,
    auditRetention: 7776000,
    introspectionSecret: undefined,
    production: false,
    metricsToken: undefined,
    signingKey: undefined,
    previousPublicKeys: [],
    jwtIssuer: 'auth-service',
    jwtAudience: 'api',
    logLevel: 'info',
    shutdownTimeout: 10,
    requestTimeout: 30,
    hashConcurrency: availableParallelism(),
    hashQueue: 16 * availableParallelism(),
    hsts: false,
    corsOrigins: [],
    rateLimit: true,
    limits: {
      register: { max: 30, window: 600_000 },
      login: { max: 60, window: 60_000 },
      refresh: { max: 120, window: 60_000 },
      passwordChange: { max: 10, window: 3_600_000 },
      verify: { max: 600, window: 60_000 },
      mail: { max: 10, window: 3_600_000 },
      admin: { max: 600, window: 60_000 },
      loginFailuresPerClient: { max: 10, window: 900_000 },
      loginFailuresPerAccount: { max: 100, window: 3_600_000 }
    },
    redisUrl: undefined,
    redisKeyPrefix: 'auth:',
    trustProxy: false,
    mail: {
      smtpUrl: undefined,
      from: 'no-reply@localhost',
      retryFor: 86400,
      templatesDir: undefined,
      appName: 'the service',
      resetTokenTtl: 3600,
      verifyTokenTtl: 86400,
      links: { passwordReset: undefined, emailVerify: undefined, emailChange: undefined }
    },
    requireVerifiedEmail: false,
    adminToken: undefined,
    rateLimitExempt: [],
    webhooks: { urls: [], secret: undefined, retryFor: 86400, timeout: 10 }
  })
  t.equal(loadConfig({ PORT: '' }).port, 3000, 'an empty variable counts as unset')
})

t.test('reads every variable', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    DATABASE_URL: 'postgresql://user@db:5432/auth',
    DATABASE_POOL_SIZE: '32',
    WEB_CONCURRENCY: '4',
    DATA_DIR: '/var/lib/auth',
    ACCESS_TOKEN_TTL: '5m',
    REFRESH_TOKEN_TTL: '12h',
    SESSION_MAX_AGE: '7d',
    REFRESH_REUSE_GRACE: '0',
    PURGE_INTERVAL: '0',
    INTROSPECTION_SECRET: 'a-secret-of-sixteen-or-more',
    METRICS_TOKEN: 'a-metrics-token-of-16+',
    JWT_PREVIOUS_PUBLIC_KEYS: pem(previousOne.publicKey, 'spki') + '\n' + pem(previousTwo.publicKey, 'spki'),
    JWT_PRIVATE_KEY: pem(ed25519.privateKey, 'pkcs8'),
    JWT_PUBLIC_KEY: pem(ed25519.publicKey, 'spki'),
    JWT_ISSUER: 'https://auth.example.com',
    JWT_AUDIENCE: 'mobile',
    LOG_LEVEL: 'warn',
    SHUTDOWN_TIMEOUT: '30s',
    HASH_CONCURRENCY: '3',
    HASH_QUEUE: '0',
    HSTS: 'on',
    CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
    RATE_LIMIT: 'off',
    TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,loopback,2001:db8::/32,::1/128',
    RATE_LIMIT_REGISTER: '5/1h',
    RATE_LIMIT_LOGIN: '10/30s',
    RATE_LIMIT_REFRESH: '1000/60',
    LOGIN_FAILURES_PER_CLIENT: '3/1d',
    LOGIN_FAILURES_PER_ACCOUNT: '50/2h',
    REDIS_URL: 'redis://cache.internal:6379/2',
    REDIS_KEY_PREFIX: 'auth-eu:',
    SMTP_URL: 'smtps://mailer:p4ssw0rd@smtp.example.com:465',
    MAIL_FROM: 'Acme <no-reply@acme.example>',
    MAIL_RETRY_FOR: '2h',
    MAIL_TEMPLATES_DIR: '/etc/auth/mail',
    APP_NAME: 'Acme',
    RESET_TOKEN_TTL: '30m',
    VERIFY_TOKEN_TTL: '2d',
    PASSWORD_RESET_URL: 'https://acme.example/reset#token={token}',
    EMAIL_VERIFY_URL: 'acme://verify#token={token}',
    EMAIL_CHANGE_URL: 'https://acme.example/email?t={token}',
    REQUIRE_VERIFIED_EMAIL: 'on',
    RATE_LIMIT_MAIL: '3/1m',
    ADMIN_TOKEN: 'an-admin-token-of-at-least-32-characters',
    RATE_LIMIT_ADMIN: '100/1m',
    RATE_LIMIT_EXEMPT: '10.1.0.0/16, 192.0.2.7',
    WEBHOOK_URLS: 'https://hooks.example.com/auth, http://10.0.0.5:8080/in,https://hooks.example.com/auth',
    WEBHOOK_SECRET: webhookSecret,
    WEBHOOK_RETRY_FOR: '3d',
    WEBHOOK_TIMEOUT: '5s'
  })
  t.match(config, {
    port: 8080,
    host: '0.0.0.0',
    databaseUrl: 'postgresql://user@db:5432/auth',
    databasePoolSize: 32,
    webConcurrency: 4,
    dataDir: '/var/lib/auth',
    accessTokenTtl: 300,
    refreshTokenTtl: 43200,
    sessionMaxAge: 7 * 86400,
    refreshReuseGrace: 0,
    purgeInterval: 0,
    introspectionSecret: 'a-secret-of-sixteen-or-more',
    metricsToken: 'a-metrics-token-of-16+',
    jwtIssuer: 'https://auth.example.com',
    jwtAudience: 'mobile',
    logLevel: 'warn',
    shutdownTimeout: 30,
    hashConcurrency: 3,
    hashQueue: 0,
    hsts: true,
    corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
    rateLimit: false,
    trustProxy: ['10.0.0.0/8', '192.168.1.7', 'loopback', '2001:db8::/32', '::1/128'],
    limits: {
      register: { max: 5, window: 3_600_000 },
      login: { max: 10, window: 30_000 },
      refresh: { max: 1000, window: 60_000 },
      loginFailuresPerClient: { max: 3, window: 86_400_000 },
      loginFailuresPerAccount: { max: 50, window: 7_200_000 },
      mail: { max: 3, window: 60_000 },
      admin: { max: 100, window: 60_000 }
    },
    redisUrl: 'redis://cache.internal:6379/2',
    redisKeyPrefix: 'auth-eu:',
    mail: {
      smtpUrl: 'smtps://mailer:p4ssw0rd@smtp.example.com:465',
      from: 'Acme <no-reply@acme.example>',
      retryFor: 7200,
      templatesDir: '/etc/auth/mail',
      appName: 'Acme',
      resetTokenTtl: 1800,
      verifyTokenTtl: 2 * 86400,
      links: { passwordReset: 'https://acme.example/reset#token={token}', emailVerify: 'acme://verify#token={token}', emailChange: 'https://acme.example/email?t={token}' }
    },
    requireVerifiedEmail: true,
    adminToken: 'an-admin-token-of-at-least-32-characters',
    rateLimitExempt: ['10.1.0.0/16', '192.0.2.7'],
    webhooks: { urls: ['https://hooks.example.com/auth', 'http://10.0.0.5:8080/in'], secret: webhookSecret, retryFor: 3 * 86400, timeout: 5 }
  })
  t.ok(config.signingKey?.equals(ed25519.privateKey))
  t.equal(config.previousPublicKeys.length, 2)
  t.ok(config.previousPublicKeys[1]?.equals(previousTwo.publicKey))
  t.ok(loadConfig({ JWT_PRIVATE_KEY: pem(ed25519.privateKey, 'pkcs8') }).signingKey, 'the public key is optional')
})

t.test('durations are seconds or a number with s, m, h or d', async (t) => {
  t.equal(parseDuration('900'), 900)
  t.equal(parseDuration('45s'), 45)
  t.equal(parseDuration('15m'), 900)
  t.equal(parseDuration('12h'), 43200)
  t.equal(parseDuration('30d'), 2592000)
})

t.test('bad values: one line per bad variable, naming it', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const other = generateKeyPairSync('ed25519')
  const cases: Array<[Record<string, string>, RegExp[]]> = [
    [{ PORT: 'http' }, [/^PORT: must be integer, got "http"$/]],
    [{ PORT: '70000' }, [/^PORT: /]],
    [{ DATABASE_POOL_SIZE: '0' }, [/^DATABASE_POOL_SIZE: /]],
    [{ DATABASE_URL: 'mysql://admin:hunter2@localhost/db' }, [/^DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL$/]],
    [{ DATABASE_URL: 'postgres://[bad' }, [/^DATABASE_URL: not a valid URL$/]],
    [{ ACCESS_TOKEN_TTL: '15 minutes' }, [/^ACCESS_TOKEN_TTL: must be a positive number of seconds/]],
    [{ REFRESH_TOKEN_TTL: '0' }, [/^REFRESH_TOKEN_TTL: /]],
    [{ REFRESH_TOKEN_TTL: '3651d' }, [/^REFRESH_TOKEN_TTL: must be at most 3650d$/]],
    [{ SESSION_MAX_AGE: 'forever' }, [/^SESSION_MAX_AGE: /]],
    [{ REFRESH_REUSE_GRACE: '-1' }, [/^REFRESH_REUSE_GRACE: /]],
    [{ PURGE_INTERVAL: 'often' }, [/^PURGE_INTERVAL: /]],
    [{ INTROSPECTION_SECRET: 'sh0rtsecret' }, [/^INTROSPECTION_SECRET: must not have fewer than 16 characters$/]],
    [{ JWT_PREVIOUS_PUBLIC_KEYS: 'garbage' }, [/^JWT_PREVIOUS_PUBLIC_KEYS: must be one or more Ed25519 public keys in PEM format$/]],
    [{ JWT_PREVIOUS_PUBLIC_KEYS: pem(rsa.publicKey, 'spki') }, [/^JWT_PREVIOUS_PUBLIC_KEYS: /]],
    [{ JWT_PREVIOUS_PUBLIC_KEYS: '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----' }, [/^JWT_PREVIOUS_PUBLIC_KEYS: /]],
    [{ SHUTDOWN_TIMEOUT: 'never' }, [/^SHUTDOWN_TIMEOUT: /]],
    [{ HASH_CONCURRENCY: '0' }, [/^HASH_CONCURRENCY: /]],
    [{ HASH_QUEUE: '-1' }, [/^HASH_QUEUE: /]],
    [{ HSTS: 'yes' }, [/^HSTS: /]],
    [{ RATE_LIMIT: 'false' }, [/^RATE_LIMIT: /]],
    [{ WEB_CONCURRENCY: '2' }, [/^WEB_CONCURRENCY: more than one process needs DATABASE_URL; the embedded PGlite database serves one process only$/]],
    [{ WEB_CONCURRENCY: '0', DATABASE_URL: 'postgres://db/auth' }, [/^WEB_CONCURRENCY: /]],
    [{ RATE_LIMIT_LOGIN: '60 per minute' }, [/^RATE_LIMIT_LOGIN: must be a count and a duration, such as 30\/10m \(s, m, h or d\), got "60 per minute"$/]],
    [{ RATE_LIMIT_REGISTER: '0/10m' }, [/^RATE_LIMIT_REGISTER: /]],
    [{ LOGIN_FAILURES_PER_ACCOUNT: '100/400d' }, [/^LOGIN_FAILURES_PER_ACCOUNT: the window must be at most 366d$/]],
    [{ REDIS_URL: 'http://admin:hunter2@cache' }, [/^REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL$/]],
    [{ REDIS_URL: 'redis://hunter2@[bad' }, [/^REDIS_URL: not a valid URL$/]],
    [{ TRUST_PROXY: 'true' }, [/^TRUST_PROXY: must be proxy addresses or CIDR ranges of at least one bit, comma-separated; not "true"$/]],
    [{ TRUST_PROXY: '0.0.0.0/0' }, [/^TRUST_PROXY: .*; not "0\.0\.0\.0\/0"$/]],
    [{ TRUST_PROXY: '10.0.0.1, ::/0' }, [/^TRUST_PROXY: .*; not "::\/0"$/]],
    [{ TRUST_PROXY: '10.0.0.1/999,10.0.0.0/33,::1/129,10.0.0.0/8/8,10.0.0.0/x,10.0.0.0/08' }, [/^TRUST_PROXY: .*; not "10\.0\.0\.1\/999", "10\.0\.0\.0\/33", "::1\/129", "10\.0\.0\.0\/8\/8", "10\.0\.0\.0\/x", "10\.0\.0\.0\/08"$/]],
    [{ JWT_AUDIENCE: 'auth-service' }, [/^JWT_AUDIENCE: must differ from JWT_ISSUER/]],
    [{ REQUEST_TIMEOUT: '0' }, [/^REQUEST_TIMEOUT: /]],
    [{ NODE_ENV: 'production' }, [/^INTROSPECTION_SECRET: required with NODE_ENV=production, or \/auth\/introspect\/ answers anyone; set INTROSPECTION_PUBLIC=on to leave it open on purpose$/]],
    [{ CORS_ORIGINS: 'https://ok.example.com,*,https://app.example.com/path' }, [/^CORS_ORIGINS: not an origin \(scheme:\/\/host\[:port\]\): "\*", "https:\/\/app\.example\.com\/path"$/]],
    [{ LOG_LEVEL: 'loud' }, [/^LOG_LEVEL: must be equal to one of the allowed values, got "loud"$/]],
    [{ JWT_PRIVATE_KEY: 'not a key' }, [/^JWT_PRIVATE_KEY: not a private key in PEM format$/]],
    [{ JWT_PRIVATE_KEY: pem(rsa.privateKey, 'pkcs8') }, [/^JWT_PRIVATE_KEY: must be an Ed25519 key, got rsa$/]],
    [{ JWT_PUBLIC_KEY: pem(ed25519.publicKey, 'spki') }, [/^JWT_PUBLIC_KEY: set only together with JWT_PRIVATE_KEY$/]],
    [{ JWT_PRIVATE_KEY: pem(ed25519.privateKey, 'pkcs8'), JWT_PUBLIC_KEY: pem(other.publicKey, 'spki') }, [/^JWT_PUBLIC_KEY: not the public half/]],
    [{ JWT_PRIVATE_KEY: pem(ed25519.privateKey, 'pkcs8'), JWT_PUBLIC_KEY: 'garbage' }, [/^JWT_PUBLIC_KEY: not the public half/]],
    [{ PORT: 'x', ACCESS_TOKEN_TTL: 'soon', DATABASE_URL: 'http://x' }, [/^PORT: /, /^DATABASE_URL: /, /^ACCESS_TOKEN_TTL: /]],
    [{ SMTP_URL: 'http://mailer:hunter2@smtp.example.com', MAIL_FROM: 'a@b.c' }, [/^SMTP_URL: must be an smtp:\/\/ or smtps:\/\/ URL$/]],
    [{ SMTP_URL: 'smtp://mailer:hunter2@[bad', MAIL_FROM: 'a@b.c' }, [/^SMTP_URL: not a valid URL$/]],
    [{ SMTP_URL: 'smtp://mailer:hunter2@smtp.example.com:587' }, [/^MAIL_FROM: required with SMTP_URL/]],
    [{ MAIL_FROM: 'nobody' }, [/^MAIL_FROM: must be an address, or a name and <address>, got "nobody"$/]],
    [{ MAIL_FROM: 'Evil\r\nBcc: x@y.z <a@b.c>' }, [/^MAIL_FROM: /]],
    [{ MAIL_RETRY_FOR: 'a while' }, [/^MAIL_RETRY_FOR: /]],
    [{ RESET_TOKEN_TTL: '0' }, [/^RESET_TOKEN_TTL: /]],
    [{ VERIFY_TOKEN_TTL: '3651d' }, [/^VERIFY_TOKEN_TTL: must be at most 3650d$/]],
    [{ AUDIT_RETENTION: '3651d' }, [/^AUDIT_RETENTION: must be at most 3650d$/]],
    [{ AUDIT_RETENTION: '0' }, [/^AUDIT_RETENTION: /]],
    [{ TOKEN_CACHE_SIZE: '0' }, [/^TOKEN_CACHE_SIZE: /]],
    [{ LEGACY_JWT_SECRET: 'old secret' }, [/^LEGACY_JWT_UNTIL: required with LEGACY_JWT_SECRET/]],
    [{ LEGACY_JWT_UNTIL: '2026-12-01T00:00:00Z' }, [/^LEGACY_JWT_UNTIL: set without LEGACY_JWT_SECRET/]],
    [{ LEGACY_JWT_SECRET: 'hunter2', LEGACY_JWT_UNTIL: 'next month' }, [/^LEGACY_JWT_UNTIL: must match format "date-time"/]],
    [{ LEGACY_JWT_SECRET: 'old secret', LEGACY_JWT_UNTIL: new Date(Date.now() + 91 * 86400_000).toISOString() }, [/^LEGACY_JWT_UNTIL: must be at most 90 days ahead/]],
    [{ LEGACY_JWT_ALGORITHM: 'RS256' }, [/^LEGACY_JWT_ALGORITHM: /]],
    [{ PASSWORD_RESET_URL: 'https://app.example.com/reset' }, [/^PASSWORD_RESET_URL: must be a URL with a \{token\} placeholder/]],
    [{ EMAIL_VERIFY_URL: 'not a url {token}' }, [/^EMAIL_VERIFY_URL: /]],
    [{ REQUIRE_VERIFIED_EMAIL: 'yes' }, [/^REQUIRE_VERIFIED_EMAIL: /]],
    [{ RATE_LIMIT_MAIL: '10/400d' }, [/^RATE_LIMIT_MAIL: the window must be at most 366d$/]],
    [{ APP_NAME: 'x'.repeat(101) }, [/^APP_NAME: /]],
    [{ ADMIN_TOKEN: 'hunter2-is-too-short' }, [/^ADMIN_TOKEN: must not have fewer than 32 characters$/]],
    [{ RATE_LIMIT_ADMIN: 'lots' }, [/^RATE_LIMIT_ADMIN: /]],
    [{ RATE_LIMIT_EXEMPT: '10.0.0.0/8, 0.0.0.0/0' }, [/^RATE_LIMIT_EXEMPT: must be addresses or CIDR ranges of at least one bit, comma-separated; not "0\.0\.0\.0\/0"$/]],
    [{ WEBHOOK_URLS: 'https://ok.example.com/in, ftp://files.example.com/,not a url', WEBHOOK_SECRET: webhookSecret }, [/^WEBHOOK_URLS: must be http:\/\/ or https:\/\/ URLs, comma-separated; not "ftp:\/\/files\.example\.com\/", "not a url"$/]],
    [{ WEBHOOK_URLS: 'https://hooks.example.com/in' }, [/^WEBHOOK_SECRET: required with WEBHOOK_URLS, to sign every webhook$/]],
    [{ WEBHOOK_SECRET: Buffer.from('hunter2 hunter2 hunter2 hunter2').toString('base64') }, [/^WEBHOOK_SECRET: must be whsec_ followed by the base64 of at least 24 random bytes/]],
    [{ WEBHOOK_SECRET: `whsec_${Buffer.from('hunter2 is too short').toString('base64')}` }, [/^WEBHOOK_SECRET: /]],
    [{ WEBHOOK_SECRET: `whsec_${Buffer.from('hunter2 hunter2 hunter2 hunter2').toString('base64url')}` }, [/^WEBHOOK_SECRET: /]],
    [{ WEBHOOK_RETRY_FOR: '0' }, [/^WEBHOOK_RETRY_FOR: /]],
    [{ WEBHOOK_RETRY_FOR: '3651d' }, [/^WEBHOOK_RETRY_FOR: must be at most 3650d$/]],
    [{ WEBHOOK_TIMEOUT: 'soon' }, [/^WEBHOOK_TIMEOUT: must be a positive number of seconds/]],
    [{ WEBHOOK_TIMEOUT: '6m' }, [/^WEBHOOK_TIMEOUT: must be at most 5m$/]]
  ]
  for (const [environment, expected] of cases) {
    const error = configError(environment)
    t.equal(error.problems.length, expected.length, JSON.stringify(error.problems))
    expected.forEach((pattern, i) => t.match(error.problems[i], pattern))
    t.match(error.message, /^Invalid configuration:\n {2}/)
    t.notMatch(error.message, /hunter2|sh0rtsecret|PRIVATE KEY/, 'no secret is echoed')
  }
  t.notMatch(configError({ WEBHOOK_SECRET: 'whsec_hunter2' }).message, /hunter2/, 'nor a webhook secret')
})

t.test('NODE_ENV=production: introspection open only on purpose, and every open surface named', async (t) => {
  const open = loadConfig({ NODE_ENV: 'production', INTROSPECTION_PUBLIC: 'on' })
  t.equal(open.production, true)
  t.match(openSurfaces(open), [/^GET \/metrics answers anyone/, /^POST \/auth\/introspect\/ answers anyone/, /^HSTS is off/, /^SMTP_URL is not set/])
  const closed = loadConfig({ NODE_ENV: 'production', INTROSPECTION_SECRET: 's'.repeat(16), METRICS_TOKEN: 'm'.repeat(16), HSTS: 'on', SMTP_URL: 'smtp://smtp.example.com', MAIL_FROM: 'a@example.com' })
  t.same(openSurfaces(closed), [])
  t.equal(loadConfig({}).production, false)
})
