import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const Duration = Type.String({ pattern: '^[1-9][0-9]*[smhd]?$' })
// `30/10m`: at most 30 in 10 minutes.
const ratePattern = /^[1-9][0-9]*\/[1-9][0-9]*[smhd]?$/
const Rate = Type.String({ pattern: ratePattern.source })

export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  WEB_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  ACCESS_TOKEN_TTL: { ...Duration, default: '15m' },
  REFRESH_TOKEN_TTL: { ...Duration, default: '30d' },
  SESSION_MAX_AGE: { ...Duration, default: '90d' },
  TOKEN_CACHE_SIZE: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000 }),
  REFRESH_REUSE_GRACE: Type.Integer({ minimum: 0, maximum: 3600, default: 10 }),
  PURGE_INTERVAL: Type.String({ pattern: '^(0|[1-9][0-9]*[smhd]?)$', default: '1h' }),
  AUDIT_RETENTION: { ...Duration, default: '90d' },
  INTROSPECTION_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  INTROSPECTION_PUBLIC: Type.Enum(['on', 'off'], { default: 'off' }),
  NODE_ENV: Type.Optional(Type.String()),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  JWT_PRIVATE_KEY: Type.Optional(Type.String()),
  JWT_PUBLIC_KEY: Type.Optional(Type.String()),
  JWT_PREVIOUS_PUBLIC_KEYS: Type.Optional(Type.String()),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'auth-service' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'api' }),
  SHUTDOWN_TIMEOUT: { ...Duration, default: '10s' },
  REQUEST_TIMEOUT: { ...Duration, default: '30s' },
  // argon2 is CPU-bound: more hashes at once than cores add memory (19 MiB each) and latency, not throughput.
  HASH_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: availableParallelism() }),
  HASH_QUEUE: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  HSTS: Type.Enum(['on', 'off'], { default: 'off' }),
  RATE_LIMIT: Type.Enum(['on', 'off'], { default: 'on' }),
  RATE_LIMIT_REGISTER: { ...Rate, default: '30/10m' },
  RATE_LIMIT_LOGIN: { ...Rate, default: '60/1m' },
  RATE_LIMIT_REFRESH: { ...Rate, default: '120/1m' },
  RATE_LIMIT_PASSWORD_CHANGE: { ...Rate, default: '10/1h' },
  RATE_LIMIT_VERIFY: { ...Rate, default: '600/1m' },
  LOGIN_FAILURES_PER_CLIENT: { ...Rate, default: '10/15m' },
  LOGIN_FAILURES_PER_ACCOUNT: { ...Rate, default: '100/1h' },
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_KEY_PREFIX: Type.String({ default: 'auth:' }),
  TRUST_PROXY: Type.Optional(Type.String()),
  CORS_ORIGINS: Type.Optional(Type.String()),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  MAIL_FROM: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
  MAIL_RETRY_FOR: { ...Duration, default: '24h' },
  MAIL_TEMPLATES_DIR: Type.Optional(Type.String({ minLength: 1 })),
  APP_NAME: Type.String({ minLength: 1, maxLength: 100, default: 'the service' }),
  RESET_TOKEN_TTL: { ...Duration, default: '1h' },
  VERIFY_TOKEN_TTL: { ...Duration, default: '24h' },
  PASSWORD_RESET_URL: Type.Optional(Type.String()),
  EMAIL_VERIFY_URL: Type.Optional(Type.String()),
  EMAIL_CHANGE_URL: Type.Optional(Type.String()),
  REQUIRE_VERIFIED_EMAIL: Type.Enum(['on', 'off'], { default: 'off' }),
  RATE_LIMIT_MAIL: { ...Rate, default: '10/1h' },
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  RATE_LIMIT_ADMIN: { ...Rate, default: '600/1m' },
  RATE_LIMIT_EXEMPT: Type.Optional(Type.String()),
  WEBHOOK_URLS: Type.Optional(Type.String()),
  WEBHOOK_SECRET: Type.Optional(Type.String()),
  WEBHOOK_RETRY_FOR: { ...Duration, default: '24h' },
  WEBHOOK_TIMEOUT: { ...Duration, default: '10s' },
  LEGACY_JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  LEGACY_JWT_ALGORITHM: Type.Enum(['HS256', 'HS384', 'HS512'], { default: 'HS256' }),
  LEGACY_JWT_UNTIL: Type.Optional(Type.String({ format: 'date-time' })),
  LEGACY_JWT_USER_ID_CLAIM: Type.String({ minLength: 1, maxLength: 100, default: 'user_id' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' })
})
type Env = Static<typeof EnvSchema>

/** At most `max` in `window` milliseconds. */
export interface Limit {
  max: number
  window: number
}

/** The throttle's limits, each per client unless it says otherwise. */
export interface Limits {
  register: Limit
  login: Limit
  refresh: Limit
  /** Password changes, per client and per user. */
  passwordChange: Limit
  /** Calls of /auth/verify/, and apart of /auth/introspect/, per client. */
  verify: Limit
  /** Requests that may send a mail (password reset, verification resend, email change), per client. */
  mail: Limit
  /** Calls of the admin API, per client. */
  admin: Limit
  /** Failed logins of one account from one client; past it, 429 until the window ends. */
  loginFailuresPerClient: Limit
  /** Failed logins of one account from every client; past it, waits that double with each failure. */
  loginFailuresPerAccount: Limit
}

export interface Config {
  port: number
  host: string
  /** postgres.js connection string; without it the service runs on PGlite under dataDir. */
  databaseUrl?: string
  /** Connections in the postgres.js pool. */
  databasePoolSize: number
  /** Worker processes sharing the port; above 1 it needs databaseUrl. */
  webConcurrency: number
  dataDir: string
  /** Seconds. */
  accessTokenTtl: number
  /** Seconds. */
  refreshTokenTtl: number
  /** Seconds from login after which a session cannot be refreshed. */
  sessionMaxAge: number
  /** Verified tokens each process remembers, so that a token presented again skips its signature check. */
  tokenCacheSize: number
  /** Seconds during which a rotated refresh token gets its replacement again; 0 turns it off. */
  refreshReuseGrace: number
  /** Seconds between purges of expired rows; 0 turns the job off. */
  purgeInterval: number
  /** Seconds an audit event is kept. */
  auditRetention: number
  /** When set, callers of /auth/introspect/ must present it as a Bearer token. */
  introspectionSecret?: string
  /** NODE_ENV=production: surfaces left open are refused or warned about at start. */
  production: boolean
  /** When set, GET /metrics needs it as a Bearer token. */
  metricsToken?: string
  /** From JWT_PRIVATE_KEY; without it a key pair is kept in dataDir. */
  signingKey?: KeyObject
  /** Keys of earlier rotations: tokens they signed verify until they expire. */
  previousPublicKeys: KeyObject[]
  jwtIssuer: string
  jwtAudience: string
  logLevel: string
  /** Seconds that SIGTERM waits for requests in flight before the process exits anyway. */
  shutdownTimeout: number
  /** Seconds a client has to send a whole request, headers and body. */
  requestTimeout: number
  /** Argon2 hashes computed at once. */
  hashConcurrency: number
  /** Hashes that may wait for a slot; past that, 503. */
  hashQueue: number
  /** Send Strict-Transport-Security: for a service reached over HTTPS only. */
  hsts: boolean
  /** Browser origins allowed to call the API; none by default. */
  corsOrigins: string[]
  /** Per-client limits on register, login and refresh; off only for load tests. */
  rateLimit: boolean
  limits: Limits
  /** When set, every throttle counter lives in this Redis, shared by all instances. */
  redisUrl?: string
  redisKeyPrefix: string
  /** Proxies whose X-Forwarded-For is believed, by address; false for none. */
  trustProxy: string[] | false
  mail: MailConfig
  /** A login with the right password on an account whose email is not verified answers 403 email_unverified. */
  requireVerifiedEmail: boolean
  /** The Bearer token of the admin API; without it every /admin/ path answers 404. */
  adminToken?: string
  /** Addresses or CIDR ranges (a load generator's) that skip the per-client request limits. */
  rateLimitExempt: string[]
  webhooks: WebhookConfig
  /** The SimpleJWT cutover window: the old service's refresh tokens exchanged for sessions until `until`. */
  legacyJwt?: LegacyJwtConfig
}

export interface LegacyJwtConfig {
  /** The old service's SIMPLE_JWT SIGNING_KEY (by default Django's SECRET_KEY). */
  secret: string
  algorithm: 'HS256' | 'HS384' | 'HS512'
  /** The end of the window: from then on, a legacy token is token_invalid. */
  until: Date
  /** The claim that holds the user's id. */
  userIdClaim: string
}

/** Signed webhooks (Standard Webhooks): every event is POSTed to each URL. */
export interface WebhookConfig {
  /** http or https URLs; none, and no event is queued. */
  urls: string[]
  /** `whsec_` and the base64 of the HMAC-SHA256 key; set whenever urls are. */
  secret?: string
  /** Seconds an event is retried for, from when it was queued, before it is failed. */
  retryFor: number
  /** Seconds a receiver has to answer one attempt. */
  timeout: number
}

/** Links mailed to users: a URL with a `{token}` placeholder; without one, a mail carries the code and the token only. */
export interface MailLinks {
  passwordReset?: string
  emailVerify?: string
  emailChange?: string
}

export interface MailConfig {
  /** nodemailer's SMTP URL; without it mails are written as .eml files under dataDir/mail/. */
  smtpUrl?: string
  from: string
  /** Seconds a mail is retried for before it is failed. */
  retryFor: number
  /** Files replacing built-in templates, one each. */
  templatesDir?: string
  appName: string
  /** Seconds a password reset token lasts. */
  resetTokenTtl: number
  /** Seconds an email verification token lasts. */
  verifyTokenTtl: number
  links: MailLinks
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`)
  }
}

const secretVariables = new Set(['DATABASE_URL', 'INTROSPECTION_SECRET', 'METRICS_TOKEN', 'REDIS_URL', 'SMTP_URL', 'ADMIN_TOKEN', 'WEBHOOK_SECRET', 'LEGACY_JWT_SECRET'])
const maxTtlSeconds = 3650 * 86400
// `ada@example.com` or `Ada Lovelace <ada@example.com>`: one address, no line break.
const mailbox = /^(?:[^<>\r\n]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/
const secondsPerUnit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** `900`, `900s`, `15m`, `12h` and `30d` all mean seconds. */
export function parseDuration (value: string): number {
  const unit = value.at(-1) as string
  return unit in secondsPerUnit
    ? Number(value.slice(0, -1)) * (secondsPerUnit[unit] as number)
    : Number(value)
}

/** `30/10m` is at most 30 in 10 minutes, the window in milliseconds. */
export function parseRate (value: string): Limit {
  const [max, window] = value.split('/') as [string, string]
  return { max: Number(max), window: parseDuration(window) * 1000 }
}

/** Reads the environment, or throws a ConfigError with one line per bad variable. */
export function loadConfig (environment: Record<string, string | undefined> = process.env): Config {
  const picked = Object.fromEntries(
    Object.keys(EnvSchema.properties)
      .filter((name) => environment[name] !== undefined && environment[name] !== '')
      .map((name) => [name, environment[name]])
  )
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, picked)) as Env
  const problems: string[] = []
  for (const error of Value.Errors(EnvSchema, env)) {
    const name = error.instancePath.slice(1)
    // Never echo a value that is or may hold a secret.
    const got = secretVariables.has(name) ? '' : `, got ${JSON.stringify(env[name as keyof Env])}`
    problems.push(`${name}: ${error.keyword === 'pattern' ? describe(name) : error.message}${got}`)
  }
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL'] as const) {
    if (env[name] !== undefined && !URL.canParse(env[name])) problems.push(`${name}: not a valid URL`)
  }
  for (const name of ['ACCESS_TOKEN_TTL', 'REFRESH_TOKEN_TTL', 'SESSION_MAX_AGE', 'PURGE_INTERVAL', 'AUDIT_RETENTION', 'SHUTDOWN_TIMEOUT', 'REQUEST_TIMEOUT', 'MAIL_RETRY_FOR', 'RESET_TOKEN_TTL', 'VERIFY_TOKEN_TTL', 'WEBHOOK_RETRY_FOR'] as const) {
    if (parseDuration(env[name]) > maxTtlSeconds) problems.push(`${name}: must be at most 3650d`)
  }
  for (const name of ['RATE_LIMIT_REGISTER', 'RATE_LIMIT_LOGIN', 'RATE_LIMIT_REFRESH', 'RATE_LIMIT_PASSWORD_CHANGE', 'RATE_LIMIT_VERIFY', 'RATE_LIMIT_MAIL', 'RATE_LIMIT_ADMIN', 'LOGIN_FAILURES_PER_CLIENT', 'LOGIN_FAILURES_PER_ACCOUNT'] as const) {
    if (ratePattern.test(env[name]) && parseRate(env[name]).window > 366 * 86400_000) problems.push(`${name}: the window must be at most 366d`)
  }
  if (env.JWT_AUDIENCE === env.JWT_ISSUER) {
    problems.push('JWT_AUDIENCE: must differ from JWT_ISSUER, which is the audience of refresh tokens: a relying party checking aud must not accept one')
  }
  if (env.NODE_ENV === 'production' && env.INTROSPECTION_SECRET === undefined && env.INTROSPECTION_PUBLIC === 'off') {
    problems.push('INTROSPECTION_SECRET: required with NODE_ENV=production, or /auth/introspect/ answers anyone; set INTROSPECTION_PUBLIC=on to leave it open on purpose')
  }
  if (env.WEB_CONCURRENCY > 1 && env.DATABASE_URL === undefined) {
    problems.push('WEB_CONCURRENCY: more than one process needs DATABASE_URL; the embedded PGlite database serves one process only')
  }
  if (env.SMTP_URL !== undefined && env.MAIL_FROM === undefined) problems.push('MAIL_FROM: required with SMTP_URL, as the sender of every mail')
  if (env.MAIL_FROM !== undefined && !mailbox.test(env.MAIL_FROM)) problems.push(`MAIL_FROM: must be an address, or a name and <address>, got ${JSON.stringify(env.MAIL_FROM)}`)
  for (const name of ['PASSWORD_RESET_URL', 'EMAIL_VERIFY_URL', 'EMAIL_CHANGE_URL'] as const) {
    const template = env[name]
    if (template !== undefined && (!template.includes('{token}') || !URL.canParse(template.replaceAll('{token}', 'token')))) {
      problems.push(`${name}: must be a URL with a {token} placeholder, such as https://app.example.com/reset#token={token}, got ${JSON.stringify(template)}`)
    }
  }
  const corsOrigins = readOrigins(env.CORS_ORIGINS, problems)
  const trustProxy = readTrustProxy(env.TRUST_PROXY, problems)
  const rateLimitExempt = readRanges('RATE_LIMIT_EXEMPT', env.RATE_LIMIT_EXEMPT, problems) || []
  const signingKey = readSigningKey(env, problems)
  const webhookUrls = readWebhookUrls(env.WEBHOOK_URLS, problems)
  readWebhookSecret(env.WEBHOOK_SECRET, webhookUrls, problems)
  // AbortSignal.timeout takes at most 2^31 - 1 ms; a receiver that needs minutes should answer first and work after.
  if (parseDuration(env.WEBHOOK_TIMEOUT) > 300) problems.push('WEBHOOK_TIMEOUT: must be at most 5m')
  const previousPublicKeys = readPreviousKeys(env.JWT_PREVIOUS_PUBLIC_KEYS, problems)
  const legacyJwt = readLegacyJwt(env, problems)
  if (problems.length > 0) throw new ConfigError(problems)

  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    webConcurrency: env.WEB_CONCURRENCY,
    dataDir: env.DATA_DIR,
    accessTokenTtl: parseDuration(env.ACCESS_TOKEN_TTL),
    refreshTokenTtl: parseDuration(env.REFRESH_TOKEN_TTL),
    sessionMaxAge: parseDuration(env.SESSION_MAX_AGE),
    tokenCacheSize: env.TOKEN_CACHE_SIZE,
    refreshReuseGrace: env.REFRESH_REUSE_GRACE,
    purgeInterval: parseDuration(env.PURGE_INTERVAL),
    auditRetention: parseDuration(env.AUDIT_RETENTION),
    introspectionSecret: env.INTROSPECTION_SECRET,
    production: env.NODE_ENV === 'production',
    metricsToken: env.METRICS_TOKEN,
    signingKey,
    previousPublicKeys,
    jwtIssuer: env.JWT_ISSUER,
    jwtAudience: env.JWT_AUDIENCE,
    logLevel: env.LOG_LEVEL,
    shutdownTimeout: parseDuration(env.SHUTDOWN_TIMEOUT),
    requestTimeout: parseDuration(env.REQUEST_TIMEOUT),
    hashConcurrency: env.HASH_CONCURRENCY,
    hashQueue: env.HASH_QUEUE ?? 16 * env.HASH_CONCURRENCY,
    hsts: env.HSTS === 'on',
    corsOrigins,
    rateLimit: env.RATE_LIMIT === 'on',
    limits: {
      register: parseRate(env.RATE_LIMIT_REGISTER),
      login: parseRate(env.RATE_LIMIT_LOGIN),
      refresh: parseRate(env.RATE_LIMIT_REFRESH),
      passwordChange: parseRate(env.RATE_LIMIT_PASSWORD_CHANGE),
      verify: parseRate(env.RATE_LIMIT_VERIFY),
      mail: parseRate(env.RATE_LIMIT_MAIL),
      admin: parseRate(env.RATE_LIMIT_ADMIN),
      loginFailuresPerClient: parseRate(env.LOGIN_FAILURES_PER_CLIENT),
      loginFailuresPerAccount: parseRate(env.LOGIN_FAILURES_PER_ACCOUNT)
    },
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    trustProxy,
    mail: {
      smtpUrl: env.SMTP_URL,
      from: env.MAIL_FROM ?? 'no-reply@localhost',
      retryFor: parseDuration(env.MAIL_RETRY_FOR),
      templatesDir: env.MAIL_TEMPLATES_DIR,
      appName: env.APP_NAME,
      resetTokenTtl: parseDuration(env.RESET_TOKEN_TTL),
      verifyTokenTtl: parseDuration(env.VERIFY_TOKEN_TTL),
      links: { passwordReset: env.PASSWORD_RESET_URL, emailVerify: env.EMAIL_VERIFY_URL, emailChange: env.EMAIL_CHANGE_URL }
    },
    requireVerifiedEmail: env.REQUIRE_VERIFIED_EMAIL === 'on',
    adminToken: env.ADMIN_TOKEN,
    rateLimitExempt,
    webhooks: {
      urls: webhookUrls,
      secret: env.WEBHOOK_SECRET,
      retryFor: parseDuration(env.WEBHOOK_RETRY_FOR),
      timeout: parseDuration(env.WEBHOOK_TIMEOUT)
    },
    legacyJwt
  }
}

/** Days ahead LEGACY_JWT_UNTIL may be: a cutover window, not a second way in for ever. */
const legacyWindowDays = 90

function readLegacyJwt (env: Env, problems: string[]): LegacyJwtConfig | undefined {
  if (env.LEGACY_JWT_SECRET === undefined) {
    if (env.LEGACY_JWT_UNTIL !== undefined) problems.push('LEGACY_JWT_UNTIL: set without LEGACY_JWT_SECRET, which the window needs')
    return undefined
  }
  if (env.LEGACY_JWT_UNTIL === undefined) {
    problems.push('LEGACY_JWT_UNTIL: required with LEGACY_JWT_SECRET: the end of the cutover window, such as 2027-01-31T00:00:00Z')
    return undefined
  }
  const until = new Date(env.LEGACY_JWT_UNTIL)
  if (until.getTime() > Date.now() + legacyWindowDays * 86400_000) problems.push(`LEGACY_JWT_UNTIL: must be at most ${legacyWindowDays} days ahead, got ${JSON.stringify(env.LEGACY_JWT_UNTIL)}`)
  return { secret: env.LEGACY_JWT_SECRET, algorithm: env.LEGACY_JWT_ALGORITHM, until, userIdClaim: env.LEGACY_JWT_USER_ID_CLAIM }
}

/** What a production instance leaves open to anyone who reaches it, one line each: warned about at start. */
export function openSurfaces (config: Config): string[] {
  const open: string[] = []
  if (config.metricsToken === undefined) open.push('GET /metrics answers anyone: set METRICS_TOKEN, or keep it off the internet')
  if (config.introspectionSecret === undefined) open.push('POST /auth/introspect/ answers anyone (INTROSPECTION_PUBLIC=on): set INTROSPECTION_SECRET')
  if (!config.hsts) open.push('HSTS is off: behind HTTPS, set HSTS=on')
  if (config.mail.smtpUrl === undefined) open.push('SMTP_URL is not set: mails, live reset links and codes among them, are written to DATA_DIR/mail/, not delivered')
  return open
}

function describe (name: string): string {
  if (name === 'DATABASE_URL') return 'must be a postgres:// or postgresql:// URL'
  if (name === 'REDIS_URL') return 'must be a redis:// or rediss:// URL'
  if (name === 'SMTP_URL') return 'must be an smtp:// or smtps:// URL'
  if (name.startsWith('RATE_LIMIT_') || name.startsWith('LOGIN_FAILURES_')) {
    return 'must be a count and a duration, such as 30/10m (s, m, h or d)'
  }
  return 'must be a positive number of seconds, or a number followed by s, m, h or d'
}

function readSigningKey (env: Env, problems: string[]): KeyObject | undefined {
  if (env.JWT_PRIVATE_KEY === undefined) {
    if (env.JWT_PUBLIC_KEY !== undefined) problems.push('JWT_PUBLIC_KEY: set only together with JWT_PRIVATE_KEY')
    return undefined
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(env.JWT_PRIVATE_KEY)
  } catch {
    problems.push('JWT_PRIVATE_KEY: not a private key in PEM format')
    return undefined
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    problems.push(`JWT_PRIVATE_KEY: must be an Ed25519 key, got ${privateKey.asymmetricKeyType}`)
    return undefined
  }
  if (env.JWT_PUBLIC_KEY !== undefined && !publicKeyMatches(privateKey, env.JWT_PUBLIC_KEY)) {
    problems.push('JWT_PUBLIC_KEY: not the public half of JWT_PRIVATE_KEY')
  }
  return privateKey
}

/** Any number of Ed25519 public keys in PEM, one after the other. */
function readPreviousKeys (pems: string | undefined, problems: string[]): KeyObject[] {
  const blocks = pems?.match(/-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----/g) ?? []
  try {
    const keys = blocks.map((block) => createPublicKey(block))
    if (keys.length === 0 && pems !== undefined) throw new Error('no key')
    if (keys.some((key) => key.asymmetricKeyType !== 'ed25519')) throw new Error('not Ed25519')
    return keys
  } catch {
    problems.push('JWT_PREVIOUS_PUBLIC_KEYS: must be one or more Ed25519 public keys in PEM format')
    return []
  }
}

/** Comma-separated origins such as `https://app.example.com`: a scheme, a host, maybe a port, nothing else. */
function readOrigins (list: string | undefined, problems: string[]): string[] {
  const origins = (list ?? '').split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
  const bad = origins.filter((origin) => !URL.canParse(origin) || new URL(origin).origin !== origin)
  if (bad.length > 0) problems.push(`CORS_ORIGINS: not an origin (scheme://host[:port]): ${bad.map((origin) => JSON.stringify(origin)).join(', ')}`)
  return origins
}

/**
 * The proxies' addresses or CIDR ranges, comma-separated; proxy-addr's names loopback, linklocal and
 * uniquelocal too. A hop count is not offered: it cannot tell a proxy from a client that sends the header.
 */
function readTrustProxy (value: string | undefined, problems: string[]): string[] | false {
  return readRanges('TRUST_PROXY', value, problems)
}

/** Addresses or CIDR ranges, comma-separated, as TRUST_PROXY and RATE_LIMIT_EXEMPT take them; false for none. */
function readRanges (name: string, value: string | undefined, problems: string[]): string[] | false {
  if (value === undefined) return false
  const ranges = value.split(',').map((range) => range.trim())
  const named = new Set(['loopback', 'linklocal', 'uniquelocal'])
  const bad = ranges.filter((range) => !named.has(range) && !validRange(range))
  if (bad.length === 0) return ranges
  const what = name === 'TRUST_PROXY' ? 'proxy addresses' : 'addresses'
  problems.push(`${name}: must be ${what} or CIDR ranges of at least one bit, comma-separated; not ${bad.map((range) => JSON.stringify(range)).join(', ')}`)
  return false
}

/**
 * An address, or a CIDR range with a prefix its family can have. A /0 range would trust X-Forwarded-For from
 * every address, so every client could pick its own address (and its own throttle counters).
 */
function validRange (proxy: string): boolean {
  const [address, prefix, ...rest] = proxy.split('/')
  const family = isIP(address!)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^[1-9][0-9]{0,2}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

/** Comma-separated http or https URLs, each once. */
function readWebhookUrls (list: string | undefined, problems: string[]): string[] {
  const urls = [...new Set((list ?? '').split(',').map((url) => url.trim()).filter((url) => url !== ''))]
  const bad = urls.filter((url) => !URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol))
  if (bad.length > 0) problems.push(`WEBHOOK_URLS: must be http:// or https:// URLs, comma-separated; not ${bad.map((url) => JSON.stringify(url)).join(', ')}`)
  return urls
}

/** Standard Webhooks' secret: `whsec_` and the base64 of a key of at least 24 bytes. Never echoed. */
function readWebhookSecret (secret: string | undefined, urls: string[], problems: string[]): void {
  if (secret === undefined) {
    if (urls.length > 0) problems.push('WEBHOOK_SECRET: required with WEBHOOK_URLS, to sign every webhook')
    return
  }
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : ''
  const key = Buffer.from(encoded, 'base64')
  // The round trip refuses what Buffer would decode leniently: base64url, missing padding, stray characters.
  if (key.toString('base64') !== encoded || key.length < 24) {
    problems.push('WEBHOOK_SECRET: must be whsec_ followed by the base64 of at least 24 random bytes, such as whsec_$(openssl rand -base64 32)')
  }
}

function publicKeyMatches (privateKey: KeyObject, publicPem: string): boolean {
  try {
    return createPublicKey(publicPem).equals(createPublicKey(privateKey))
  } catch {
    return false
  }
}
