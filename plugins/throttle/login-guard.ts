const second = 1000
const minute = 60 * second

// Past the per-account limit, waits start at 1 second and double up to 15 minutes. Never a lockout:
// the account can always be tried again.
export const accountWaits = { first: second, longest: 15 * minute }

/**
 * Failed logins per account, matched on its normalised name or email, so case variants count together.
 * An attempt counts as a failure from the moment it is reserved, so that parallel attempts cannot all pass
 * before any of them is counted; it is given back once it turns out not to be one.
 */
export interface LoginGuard {
  /**
   * Rejects with 429 while this account may not be tried from this client, or from anywhere. A known device
   * (`knownDevice`, see plugins/device-tokens.ts) is exempt from the account-wide waits, not from the client's limit.
   */
  reserve: (account: string, client: string, knownDevice?: boolean) => Promise<LoginAttempt>
}

/** The end of a reserved attempt. Only the first call counts, so `release` can safely follow the others. */
export interface LoginAttempt {
  /** Keeps the failure counted. */
  failed: () => Promise<void>
  /** Gives the attempt back and clears the client's failures for this account. */
  succeeded: () => Promise<void>
  /** Gives the attempt back: the request failed for another reason, such as a busy hasher. */
  release: () => Promise<void>
}

/**
 * The wait before the next attempt, once an account has `failures` at or past its limit of `max`. It follows
 * from the count alone, so an attempt given back takes its doubling back with it.
 */
export const accountWait = (failures: number, max: number) => Math.min(accountWaits.first * 2 ** (failures - max), accountWaits.longest)

/** An attempt's ends, of which only the first counts. */
export function endedOnce (steps: { succeeded: () => Promise<void>, release: () => Promise<void> }): LoginAttempt {
  let open = true
  const end = (step: () => Promise<void>) => async () => {
    if (!open) return
    open = false
    await step()
  }
  return { failed: end(async () => {}), succeeded: end(steps.succeeded), release: end(steps.release) }
}

export const unguarded: LoginAttempt = { async failed () {}, async succeeded () {}, async release () {} }

/** A guard whose store may fail: a Redis outage lets logins through (logged), rather than refusing everyone. */
export function failingOpen (guard: LoginGuard, log: (error: unknown) => void): LoginGuard {
  const logged = (step: () => Promise<void>) => async () => { await step().catch(log) }
  return {
    async reserve (account, client, knownDevice) {
      try {
        const attempt = await guard.reserve(account, client, knownDevice)
        return { failed: attempt.failed, succeeded: logged(attempt.succeeded), release: logged(attempt.release) }
      } catch (error) {
        if ((error as { code?: string }).code === 'throttled') throw error
        log(error)
        return unguarded
      }
    }
  }
}

export const noGuard: LoginGuard = { reserve: async () => unguarded }
