import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

export interface RedisOptions {
  redisUrl: string
}

/**
 * The Redis connection, as fastify.redis (@fastify/redis). Commands fail at once while Redis is away,
 * instead of queueing until it is back, and ioredis keeps reconnecting meanwhile: the throttle then
 * lets requests through. At start an unreachable Redis is a mistake to report, not an outage to ride out.
 */
export default fp<RedisOptions>(async (fastify, { redisUrl }) => {
  const client = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false, commandTimeout: 1000 })
  let connectionError: Error | undefined
  client.on('error', (error: Error) => {
    connectionError = error
    fastify.log.warn({ err: error }, 'redis connection error')
  })
  await client.connect().catch(() => {
    client.disconnect()
    throw new Error(`REDIS_URL: cannot connect to Redis: ${connectionError?.message}`)
  })
  await fastify.register(fastifyRedis, { client })
  // quit() needs a live connection; without one, disconnect() stops the reconnecting.
  fastify.addHook('onClose', async () => { await (client.status === 'ready' ? client.quit() : client.disconnect()) })
}, { name: 'redis' })
