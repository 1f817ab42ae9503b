import { randomBytes } from 'node:crypto'
import { hash, parseOptions, verify } from '@node-rs/argon2'
import fp from 'fastify-plugin'
import { isVerifiableDjangoHash, verifyDjangoHash } from '../src/django-hashes.js'
import { apiError, messages } from '../src/errors.js'

/** OWASP's argon2id baseline, set explicitly: argon2id is the library's default algorithm. */
export const argon2Parameters = { memoryCost: 19456, timeCost: 2, parallelism: 1 }

export interface HashingOptions {
  /** Hashes computed at once, each holding about 19 MiB. */
  concurrency: number
  /** Hashes waiting for a slot; past that, 503 at once. */
  queue: number
}

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  /**
   * False for a wrong password and for a hash that cannot be read. Reads this service's argon2 hashes and the
   * formats of src/django-hashes.ts (users moved in from Django, until their first login re-hashes).
   */
  verify: (passwordHash: string, password: string) => Promise<boolean>
  /** Spends the same time as verify, for logins of unknown users. */
  verifyDummy: (password: string) => Promise<void>
  /** True when the hash is not argon2id or is weaker than argon2Parameters. */
  needsRehash: (passwordHash: string) => boolean
  /** Hashes being computed and hashes waiting for a slot. */
  load: () => { inFlight: number, queued: number }
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

/** Passwords are NFC-normalised before hashing, so the same text typed on any keyboard verifies. */
const normalise = (password: string) => password.normalize('NFC')

/**
 * At most `concurrency` hashes run at once, with a short queue behind them: memory stays bounded,
 * and a flood of logins gets a quick 503 with Retry-After instead of ever longer waits.
 */
export function hashingSlots ({ concurrency, queue }: HashingOptions) {
  let inFlight = 0
  // Two lines, one limit: a waiting argon2 hash (about 20 ms) goes before a waiting costly one (a Django
  // PBKDF2 of 720,000 iterations, about 400 ms), so a wave of first logins of imported users delays everyone
  // else's logins by one costly hash at most, not by the whole wave.
  const waiting: Array<() => void> = []
  const waitingCostly: Array<() => void> = []
  return {
    async run<T> (work: () => Promise<T>, { costly = false } = {}): Promise<T> {
      if (inFlight < concurrency) {
        inFlight++
      } else if (waiting.length + waitingCostly.length < queue) {
        // The finishing job hands its slot over: inFlight stays as it is.
        await new Promise<void>((resolve) => (costly ? waitingCostly : waiting).push(resolve))
      } else {
        throw apiError(503, 'service_unavailable', messages.hashingBusy, { headers: { 'retry-after': '1' } })
      }
      try {
        return await work()
      } finally {
        const next = waiting.shift() ?? waitingCostly.shift()
        if (next === undefined) inFlight--
        else next()
      }
    },
    load: () => ({ inFlight, queued: waiting.length + waitingCostly.length })
  }
}

export async function createPasswordHasher (options: HashingOptions): Promise<PasswordHasher> {
  const slots = hashingSlots(options)
  const dummyHash = await hash(randomBytes(16).toString('hex'), argon2Parameters)
  const verifyArgon2 = async (passwordHash: string, password: string) => {
    try {
      return await verify(passwordHash, normalise(password))
    } catch {
      return false
    }
  }
  const verifyHash = (passwordHash: string, password: string) => {
    // Our own hashes first, by their prefix: the common path costs one string comparison more than before.
    if (passwordHash.startsWith('$argon2')) return slots.run(() => verifyArgon2(passwordHash, password))
    // A hash that can never match (Django's unusable `!…`, a refused format) still spends an argon2id verify,
    // so that its answer takes as long as an unknown user's.
    if (!isVerifiableDjangoHash(passwordHash)) {
      return slots.run(async () => {
        await verifyArgon2(dummyHash, password)
        return false
      })
    }
    // Django hashed the password as typed, without normalising it: so is it checked.
    return slots.run(() => verifyDjangoHash(passwordHash, password), { costly: true })
  }
  return {
    hash: (password) => slots.run(() => hash(normalise(password), argon2Parameters)),
    verify: verifyHash,
    verifyDummy: async (password) => { await verifyHash(dummyHash, password) },
    // Every hash but a strong enough argon2id, Django's included: the first login replaces it.
    needsRehash (passwordHash) {
      if (!passwordHash.startsWith('$argon2id$')) return true
      const used = parseOptions(passwordHash)
      return used.memoryCost < argon2Parameters.memoryCost ||
        used.timeCost < argon2Parameters.timeCost ||
        used.parallelism < argon2Parameters.parallelism
    },
    load: slots.load
  }
}

export default fp<HashingOptions>(async (fastify, options) => {
  fastify.decorate('passwordHasher', await createPasswordHasher(options))
}, { name: 'password' })
