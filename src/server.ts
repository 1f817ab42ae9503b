import cluster from 'node:cluster'
import { fileURLToPath } from 'node:url'
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import app from './app.js'
import { primaryChannel } from './cluster-metrics.js'
import { ConfigError, loadConfig, openSurfaces } from './config.js'
import { boundHeapGrowth } from './heap-growth.js'
import { prettyLogs, serverOptions } from './options.js'

/** Builds the service from the environment and listens; SIGTERM and SIGINT close it gracefully. */
export async function start (environment: Record<string, string | undefined> = process.env, { inWorker = cluster.isWorker } = {}): Promise<FastifyInstance> {
  const config = loadConfig(environment)
  boundHeapGrowth()
  const server = Fastify(serverOptions(config, { pretty: prettyLogs(process.stdout.isTTY, environment.NODE_ENV) }))
  await server.register(fp(app), { config, primary: primaryChannel() })
  if (config.production) for (const surface of openSurfaces(config)) server.log.warn(`open in production: ${surface}`)

  // Once closing, every answer asks its client to hang up: a keep-alive connection that was busy
  // when the shutdown began would otherwise hold the server open until SHUTDOWN_TIMEOUT.
  // A callback hook rather than an async one: every answer passes through it.
  let closing = false
  server.addHook('preClose', async () => { closing = true })
  server.addHook('onSend', (request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done()
  })

  // A worker under WEB_CONCURRENCY stops on its primary's SIGTERM only: Ctrl-C at a terminal reaches every
  // process of the group, and a second signal would cut the graceful close short.
  const ignore = () => {}
  if (inWorker) process.on('SIGINT', ignore)
  const graceful = closeWithGrace({ delay: config.shutdownTimeout * 1000, skip: inWorker ? ['SIGINT'] : [] }, async ({ err }) => {
    if (err) server.log.error({ err }, 'closing after an error')
    await server.close()
  })
  server.addHook('onClose', async () => {
    graceful.uninstall()
    process.off('SIGINT', ignore)
  })

  try {
    await server.listen({ port: config.port, host: config.host })
  } catch (error) {
    await server.close()
    throw error
  }
  return server
}

/** The entry point: on a bad configuration, one line per bad variable and exit code 1. */
export async function main (environment: Record<string, string | undefined> = process.env): Promise<FastifyInstance | undefined> {
  try {
    return await start(environment)
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error)
    process.exitCode = 1
    return undefined
  }
}

/* c8 ignore next 8: runs only as the entry point, which the end-to-end test starts as a child process */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (cluster.isPrimary && Number(process.env.WEB_CONCURRENCY) > 1) {
    const { supervise } = await import('./cluster.js')
    process.exitCode = await supervise()
  } else if (await main() === undefined) {
    process.exit(1)
  }
}
