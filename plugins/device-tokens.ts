import { createHmac, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import fp from 'fastify-plugin'

export interface DeviceTokenOptions {
  /** The JWT signing key: the device tokens' MAC key is derived from it, so every instance shares it. */
  signingKey: KeyObject
}

/**
 * Device tokens (OWASP's "device cookies"): a login that succeeds gets one, bound to its account and its
 * password; a later login of that account presenting it is exempt from the account-wide waits, so that failures
 * from elsewhere cannot keep the owner out, and is counted under the device instead of its address, so that
 * one token spread over many addresses gets no more guesses than one client. Stateless:
 * `dt1.<user id>.<issued, seconds>.<nonce>.<HMAC-SHA256>`, the MAC also over a digest of the password hash, so
 * that a new password voids every device token of the account.
 */
export interface DeviceTokens {
  issue: (userId: number, passwordHash: string) => string
  /** The device's id (its nonce) for a token this service issued to this user and password within the last year. */
  trusted: (token: string | undefined, userId: number, passwordHash: string) => string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    deviceTokens: DeviceTokens
  }
}

/** How long a device stays known without logging in again. */
export const deviceTokenLifetime = 365 * 86400

export function createDeviceTokens ({ signingKey }: DeviceTokenOptions, now: () => number = Date.now): DeviceTokens {
  const secret = Buffer.from(hkdfSync('sha256', signingKey.export({ format: 'der', type: 'pkcs8' }), '', 'auth-service device tokens', 32))
  const mac = (text: string, passwordHash: string) => createHmac('sha256', secret).update(text).update('\0').update(passwordHash).digest()
  const seconds = () => Math.floor(now() / 1000)
  return {
    issue (userId, passwordHash) {
      const body = `dt1.${userId}.${seconds()}.${randomBytes(16).toString('base64url')}`
      return `${body}.${mac(body, passwordHash).toString('base64url')}`
    },
    trusted (token, userId, passwordHash) {
      const parts = token?.split('.') ?? []
      if (parts.length !== 5 || parts[0] !== 'dt1' || parts[1] !== String(userId)) return undefined
      const issued = Number(parts[2])
      if (!Number.isSafeInteger(issued) || issued > seconds() + 60 || seconds() - issued > deviceTokenLifetime) return undefined
      const presented = Buffer.from(parts[4]!, 'base64url')
      const expected = mac(parts.slice(0, 4).join('.'), passwordHash)
      return presented.length === expected.length && timingSafeEqual(presented, expected) ? parts[3] : undefined
    }
  }
}

export default fp<DeviceTokenOptions>(async (fastify, options) => {
  fastify.decorate('deviceTokens', createDeviceTokens(options))
}, { name: 'device-tokens' })
