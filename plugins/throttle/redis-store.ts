import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Limits } from '../../src/config.js'
import { throttledError } from '../../src/errors.js'
import { accountWaits, endedOnce, type LoginGuard } from './login-guard.js'

// The same counters in Redis, one script per step so that instances racing on one account stay exact.
// KEYS: the pair's count, the account's count, the account's block, whose value names the attempt that set it.
// Answers { milliseconds to wait } when refused, else { 0, when the pair's window ends, when the account's ends }:
// a counter's window is known by the moment it expires, so that an attempt is only ever given back to its own.
// ARGV[8] is 'known' for a known device, which neither waits for the account's block nor sets one.
const reserveScript = `
local pair = tonumber(redis.call('GET', KEYS[1]))
if pair ~= nil and pair >= tonumber(ARGV[1]) then return { math.max(redis.call('PTTL', KEYS[1]), 1) } end
local blocked = redis.call('PTTL', KEYS[3])
if blocked > 0 and ARGV[8] ~= 'known' then return { blocked } end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
local max = tonumber(ARGV[3])
if count >= max and ARGV[8] ~= 'known' then
  local wait = math.min(tonumber(ARGV[5]) * 2 ^ (count - max), tonumber(ARGV[6]))
  redis.call('SET', KEYS[3], ARGV[7], 'PX', wait)
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
return { 0, now + redis.call('PTTL', KEYS[1]), now + redis.call('PTTL', KEYS[2]) }`
// The same KEYS. ARGV: 'succeeded' or 'release', the attempt's id, and the two windows' ends it was counted in.
// A counter whose window ended since stays gone, and a newer window's counter is left alone.
const giveBackScript = `
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local function counted (key, ends)
  local ttl = redis.call('PTTL', key)
  return ttl > 0 and math.abs(now + ttl - tonumber(ends)) <= 5
end
if ARGV[1] == 'succeeded' then redis.call('DEL', KEYS[1])
elseif counted(KEYS[1], ARGV[3]) then redis.call('DECR', KEYS[1]) end
if counted(KEYS[2], ARGV[4]) then redis.call('DECR', KEYS[2]) end
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end`

type GuardCommands = Redis & {
  loginGuardReserve: (...args: Array<string | number>) => Promise<[number, number?, number?]>
  loginGuardGiveBack: (...args: Array<string | number>) => Promise<void>
}

/**
 * The Redis keys of one account and client. The account is whatever name a client typed, so it is hashed:
 * a name such as `victim:block` must never become another account's key.
 */
export function loginGuardKeys (prefix: string, account: string, client: string) {
  const id = createHash('sha256').update(account).digest('base64url')
  return {
    pair: `${prefix}login-failures:pair:${client}:${id}`,
    count: `${prefix}login-failures:count:${id}`,
    block: `${prefix}login-failures:block:${id}`
  }
}

/** Counters shared by every instance through Redis; each key expires with its window. */
export function redisLoginGuard (redis: Redis, limits: Limits, prefix: string): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const commands = redis as GuardCommands
  commands.defineCommand('loginGuardReserve', { numberOfKeys: 3, lua: reserveScript })
  commands.defineCommand('loginGuardGiveBack', { numberOfKeys: 3, lua: giveBackScript })
  return {
    async reserve (account, client, knownDevice = false) {
      const { pair, count, block } = loginGuardKeys(prefix, account, client)
      const id = randomUUID()
      const [waitMs, pairEnds, countEnds] = await commands.loginGuardReserve(pair, count, block, perClient.max, perClient.window,
        perAccount.max, perAccount.window, accountWaits.first, accountWaits.longest, id, knownDevice ? 'known' : 'unknown')
      if (waitMs > 0) throw throttledError(waitMs)
      const giveBack = (outcome: 'succeeded' | 'release') => commands.loginGuardGiveBack(pair, count, block, outcome, id, pairEnds!, countEnds!)
      return endedOnce({
        succeeded: async () => { await giveBack('succeeded') },
        release: async () => { await giveBack('release') }
      })
    }
  }
}
