import { LruMap } from 'toad-cache'
import type { Limits } from '../../src/config.js'
import { throttledError } from '../../src/errors.js'
import { accountWait, endedOnce, type LoginGuard } from './login-guard.js'

/**
 * An LRU map that never evicts an entry while it is blocking: feeding it other keys must not make it forget a
 * blocked account. Blocking entries are pinned apart; those that stopped blocking are swept out now and then.
 */
function lruKeepingBlocks<T> (size: number, blocking: (entry: T, time: number) => boolean) {
  const recent = new LruMap<T>(size)
  const pinned = new Map<string, T>()
  let writes = 0
  return {
    get: (key: string) => pinned.get(key) ?? recent.get(key),
    set (key: string, entry: T, time: number) {
      if (blocking(entry, time)) {
        pinned.set(key, entry)
        recent.delete(key)
      } else {
        pinned.delete(key)
        recent.set(key, entry)
      }
      if (++writes % 1024 === 0) for (const [pinnedKey, pinnedEntry] of pinned) if (!blocking(pinnedEntry, time)) pinned.delete(pinnedKey)
    },
    delete (key: string) {
      pinned.delete(key)
      recent.delete(key)
    }
  }
}

/** Counters kept of each kind, pairs and accounts. */
export const entries = 100_000

/**
 * Counters of a fixed window each, kept in this process: bounded, so a flood of accounts evicts the oldest,
 * but never one that is blocking.
 */
export function memoryLoginGuard (limits: Limits, now: () => number = Date.now): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const pairs = lruKeepingBlocks<{ count: number, windowEnds: number }>(entries,
    (pair, time) => pair.windowEnds > time && pair.count >= perClient.max)
  const accounts = lruKeepingBlocks<{ count: number, windowEnds: number, blockedUntil: number }>(entries,
    (whole, time) => whole.blockedUntil > time || (whole.windowEnds > time && whole.count >= perAccount.max))
  return {
    async reserve (account, client, knownDevice = false) {
      const time = now()
      const pairKey = `${client}/${account}`
      let pair = pairs.get(pairKey)
      if (pair === undefined || pair.windowEnds <= time) pair = { count: 0, windowEnds: time + perClient.window }
      if (pair.count >= perClient.max) throw throttledError(pair.windowEnds - time)
      let whole = accounts.get(account)
      if (whole === undefined || whole.windowEnds <= time) whole = { count: 0, windowEnds: time + perAccount.window, blockedUntil: 0 }
      if (whole.blockedUntil > time && !knownDevice) throw throttledError(whole.blockedUntil - time)
      pair.count++
      whole.count++
      // Past the account's limit the wait starts now, so that parallel attempts from other clients wait too.
      // A known device neither waits nor makes others wait: its owner's typos must not block the account.
      const blockedUntil = whole.count >= perAccount.max && !knownDevice ? time + accountWait(whole.count, perAccount.max) : 0
      if (blockedUntil > 0) whole.blockedUntil = blockedUntil
      pairs.set(pairKey, pair, time)
      accounts.set(account, whole, time)
      // Counters are held, not looked up again: one whose window ended since is no longer in the map.
      const giveBack = () => {
        whole.count--
        if (whole.blockedUntil === blockedUntil) whole.blockedUntil = 0
      }
      return endedOnce({
        succeeded: async () => { pairs.delete(pairKey); giveBack() },
        release: async () => { pair.count--; giveBack() }
      })
    }
  }
}
