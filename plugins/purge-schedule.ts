import fp from 'fastify-plugin'
import { purgeExpired, type Purged } from '../src/db/purge-expired.js'

export interface PurgeOptions {
  /** Seconds between purges; 0 turns the periodic job off. */
  purgeInterval: number
  /** Seconds an audit event is kept. */
  auditRetention: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes expired tokens, sessions, mails and audit events now. */
    purgeExpired: () => Promise<Purged>
  }
}

/** The periodic cleanup of expired rows; safe with several instances running it at once. */
export default fp<PurgeOptions>(async (fastify, { purgeInterval, auditRetention }) => {
  const purge = async () => {
    const purged = await purgeExpired(fastify.db, { auditRetention })
    fastify.log.info({ purged }, 'expired tokens and sessions purged')
    return purged
  }
  fastify.decorate('purgeExpired', purge)
  if (purgeInterval === 0) return

  const timer = setInterval(() => {
    purge().catch((error: unknown) => fastify.log.error({ err: error }, 'purging expired rows failed'))
  }, purgeInterval * 1000)
  timer.unref()
  fastify.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'purge', dependencies: ['db'] })
