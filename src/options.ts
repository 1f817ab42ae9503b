import type { Server } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyReply } from 'fastify'
import { errorBody } from './errors.js'
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino'

/**
 * A request's logger that becomes a pino child only once something is logged. Most requests log
 * nothing, and building a child with its bindings (and the redaction's) on every request cost the
 * fastest route several points of its throughput (npm run bench).
 */
export class LazyRequestLogger {
  #child: Logger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  // Fastify's parent is pino's, so its children are too.
  get #logger (): Logger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options) as Logger
    return this.#child
  }

  #log (level: Level, args: unknown[]) { (this.#logger[level] as (...args: unknown[]) => void)(...args) }
  get level () { return this.#logger.level }
  set level (level: string) { this.#logger.level = level }
  fatal (...args: unknown[]) { this.#log('fatal', args) }
  error (...args: unknown[]) { this.#log('error', args) }
  warn (...args: unknown[]) { this.#log('warn', args) }
  info (...args: unknown[]) { this.#log('info', args) }
  debug (...args: unknown[]) { this.#log('debug', args) }
  trace (...args: unknown[]) { this.#log('trace', args) }
  silent () {}
  isLevelEnabled (level: string) { return this.#logger.isLevelEnabled(level) }
  bindings () { return this.#logger.bindings() }
  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger { return this.#logger.child(bindings, options) }
}

/** Pretty lines for a person at a terminal; JSON lines for everything else, and always in production. */
export const prettyLogs = (stdoutIsTTY: boolean | undefined, nodeEnv: string | undefined) => stdoutIsTTY === true && nodeEnv !== 'production'

/**
 * The server options, shared by the real server and the tests so that both validate alike.
 * `pretty`: readable lines through pino-pretty, for a person at a terminal; JSON lines otherwise.
 */
export function serverOptions ({ logLevel, trustProxy = false, requestTimeout = 30 }: { logLevel: string, trustProxy?: string[] | false, requestTimeout?: number }, { pretty = false } = {}): FastifyHttpOptions<Server> {
  const requestTimeoutMs = requestTimeout * 1000
  return {
    // A client has REQUEST_TIMEOUT for its whole request, however slowly it trickles in (408, then closed), and a
    // connection idle for four times that is closed. Node checks the first on an interval (a quarter of it, 1 to
    // 30 s), and only while the headers' own timeout is no longer than it: past that, a body could trickle for 60 s.
    requestTimeout: requestTimeoutMs,
    connectionTimeout: 4 * requestTimeoutMs,
    http: {
      headersTimeout: Math.min(requestTimeoutMs, 60_000),
      connectionsCheckingInterval: Math.min(Math.max(requestTimeoutMs / 4, 1000), 30_000)
    },
    // Whom X-Forwarded-For is believed from: nobody by default, so a client cannot pick its own address.
    trustProxy,
    logger: {
      level: logLevel,
      redact: {
        paths: ['req.headers.authorization', '*.password', '*.current_password', '*.new_password', '*.access', '*.refresh', '*.token', '*.device_token'],
        censor: '[redacted]'
      },
      ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
    },
    // Two lines per request would cost a third of the throughput of a fast route and flood the log:
    // auth events and failures get lines of their own, and every request gets its lines at debug.
    childLoggerFactory: (logger, bindings, options) => new LazyRequestLogger(logger, bindings, options),
    logController: new LogController({ disableRequestLogging: logLevel !== 'debug' && logLevel !== 'trace' }),
    bodyLimit: 64 * 1024,
    // PGlite compiles its WASM and migrates at start: slow on a busy two-core machine.
    pluginTimeout: 120_000,
    routerOptions: { ignoreTrailingSlash: true },
    // A URL that cannot be decoded never reaches a route: answer it in the service's error shape.
    frameworkErrors: (error, request, reply: FastifyReply) => {
      reply.code(400).header('cache-control', 'no-store').send(errorBody(400, 'invalid_request', error.message))
    },
    ajv: {
      customOptions: {
        // A string field given a number or an array is an error, never coerced.
        coerceTypes: false,
        // Unknown fields are dropped before the handler sees the body, so they are never stored.
        removeAdditional: true,
        allErrors: true
      }
    }
  }
}
