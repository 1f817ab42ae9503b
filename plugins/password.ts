import { randomBytes } from 'node:crypto'
import { hash, parseOptions, verify } from '@node-rs/argon2'
import fp from 'fastify-plugin'

/** OWASP's argon2id baseline, set explicitly: argon2id is the library's default algorithm. */
export const argon2Parameters = { memoryCost: 19456, timeCost: 2, parallelism: 1 }

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  /** False for a wrong password and for a hash that cannot be read. */
  verify: (passwordHash: string, password: string) => Promise<boolean>
  /** Spends the same time as verify, for logins of unknown users. */
  verifyDummy: (password: string) => Promise<void>
  /** True when the hash is not argon2id or is weaker than argon2Parameters. */
  needsRehash: (passwordHash: string) => boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    password: PasswordHasher
  }
}

/** Passwords are NFC-normalised before hashing, so the same text typed on any keyboard verifies. */
const normalise = (password: string) => password.normalize('NFC')

export async function createPasswordHasher (): Promise<PasswordHasher> {
  const dummyHash = await hash(randomBytes(16).toString('hex'), argon2Parameters)
  const verifyHash = async (passwordHash: string, password: string) => {
    try {
      return await verify(passwordHash, normalise(password))
    } catch {
      return false
    }
  }
  return {
    hash: (password) => hash(normalise(password), argon2Parameters),
    verify: verifyHash,
    verifyDummy: async (password) => { await verifyHash(dummyHash, password) },
    needsRehash (passwordHash) {
      if (!passwordHash.startsWith('$argon2id$')) return true
      const used = parseOptions(passwordHash)
      return used.memoryCost < argon2Parameters.memoryCost ||
        used.timeCost < argon2Parameters.timeCost ||
        used.parallelism < argon2Parameters.parallelism
    }
  }
}

export default fp(async (fastify) => {
  fastify.decorate('password', await createPasswordHasher())
}, { name: 'password' })
