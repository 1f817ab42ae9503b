import { createHmac, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import fp from 'fastify-plugin'

export interface DeviceTokenOptions {
  /** The JWT signing key: the device tokens' MAC key is derived from it, so every instance shares it. */
  signingKey: KeyObject
}

/**
 * Device tokens (OWASP's "device cookies"): a login that succeeds gets one, bound to its account; a later
 * login of that account presenting it is exempt from the account-wide waits, so that failures from elsewhere
 * cannot keep the owner out. Stateless: `dt1.<user id>.<issued, seconds>.<nonce>.<HMAC-SHA256>`.
 */
export interface DeviceTokens {
  issue: (userId: number) => string
  /** True for a token this service issued to this user within the last year. */
  trusted: (token: string | undefined, userId: number) => boolean
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
  const mac = (text: string) => createHmac('sha256', secret).update(text).digest()
  const seconds = () => Math.floor(now() / 1000)
  return {
    issue (userId) {
      const body = `dt1.${userId}.${seconds()}.${randomBytes(16).toString('base64url')}`
      return `${body}.${mac(body).toString('base64url')}`
    },
    trusted (token, userId) {
      const parts = token?.split('.') ?? []
      if (parts.length !== 5 || parts[0] !== 'dt1' || parts[1] !== String(userId)) return false
      const issued = Number(parts[2])
      if (!Number.isSafeInteger(issued) || issued > seconds() + 60 || seconds() - issued > deviceTokenLifetime) return false
      const presented = Buffer.from(parts[4]!, 'base64url')
      const expected = mac(parts.slice(0, 4).join('.'))
      return presented.length === expected.length && timingSafeEqual(presented, expected)
    }
  }
}

export default fp<DeviceTokenOptions>(async (fastify, options) => {
  fastify.decorate('deviceTokens', createDeviceTokens(options))
}, { name: 'device-tokens' })
