import { LruMap } from 'toad-cache'
import type { Limits } from '../../src/config.js'
import { throttledError } from '../../src/errors.js'
import { accountWait, endedOnce, type LoginGuard } from './login-guard.js'

/** Counters of a fixed window each, kept in this process: bounded, so a flood of accounts evicts the oldest. */
export function memoryLoginGuard (limits: Limits, now: () => number = Date.now): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const pairs = new LruMap<{ count: number, windowEnds: number }>(100_000)
  const accounts = new LruMap<{ count: number, windowEnds: number, blockedUntil: number }>(100_000)
  return {
    async reserve (account, client) {
      const time = now()
      const pairKey = `${client}/${account}`
      let pair = pairs.get(pairKey)
      if (pair === undefined || pair.windowEnds <= time) pair = { count: 0, windowEnds: time + perClient.window }
      if (pair.count >= perClient.max) throw throttledError(pair.windowEnds - time)
      let whole = accounts.get(account)
      if (whole === undefined || whole.windowEnds <= time) whole = { count: 0, windowEnds: time + perAccount.window, blockedUntil: 0 }
      if (whole.blockedUntil > time) throw throttledError(whole.blockedUntil - time)
      pairs.set(pairKey, pair)
      accounts.set(account, whole)
      pair.count++
      whole.count++
      // Past the account's limit the wait starts now, so that parallel attempts from other clients wait too.
      const blockedUntil = whole.count >= perAccount.max ? time + accountWait(whole.count, perAccount.max) : 0
      if (blockedUntil > 0) whole.blockedUntil = blockedUntil
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
