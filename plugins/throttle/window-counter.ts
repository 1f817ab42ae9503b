import type { Redis } from 'ioredis'
import { LruMap } from 'toad-cache'
import type { Limit } from '../../src/config.js'

/**
 * Fixed-window counters by key, for limits that are not one per request and client: per user, per address.
 * (@fastify/rate-limit runs one limit per request, so a second limit on a route needs these.)
 */
export interface WindowCounter {
  /** Counts one hit of key; answers the milliseconds to wait when it is past limit.max in its window, else 0. */
  hit: (key: string, limit: Limit) => Promise<number>
}

/** Counters kept in this process. */
export function memoryWindowCounter (now: () => number = Date.now): WindowCounter {
  const windows = new LruMap<{ count: number, windowEnds: number }>(100_000)
  return {
    async hit (key, { max, window }) {
      const time = now()
      let counted = windows.get(key)
      if (counted === undefined || counted.windowEnds <= time) {
        counted = { count: 0, windowEnds: time + window }
        windows.set(key, counted)
      }
      counted.count++
      return counted.count > max ? counted.windowEnds - time : 0
    }
  }
}

// KEYS: the counter. ARGV: the window in milliseconds. Answers the count and the milliseconds left in the window.
const hitScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { count, redis.call('PTTL', KEYS[1]) }`

type CounterCommands = Redis & { windowCounterHit: (key: string, window: number) => Promise<[number, number]> }

/** Counters shared by every instance through Redis, each key expiring with its window. */
export function redisWindowCounter (redis: Redis, prefix: string): WindowCounter {
  const commands = redis as CounterCommands
  commands.defineCommand('windowCounterHit', { numberOfKeys: 1, lua: hitScript })
  return {
    async hit (key, { max, window }) {
      const [count, left] = await commands.windowCounterHit(`${prefix}window:${key}`, window)
      return count > max ? Math.max(left, 1) : 0
    }
  }
}
