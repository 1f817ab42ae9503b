import { STATUS_CODES } from 'node:http'
import { httpErrors } from '@fastify/sensible'

export type ErrorCode =
  | 'invalid_request'
  | 'username_taken'
  | 'email_taken'
  | 'invalid_credentials'
  | 'not_authenticated'
  | 'token_invalid'
  | 'token_expired'
  | 'token_revoked'
  | 'token_reused'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'internal_error'
  | 'service_unavailable'
  | 'throttled'
  | 'email_unverified'
  | 'account_disabled'
  | 'forbidden'

/** Every message the service answers with, in one place: clients match some of them (SimpleJWT's and DRF's wording). */
export const messages = {
  invalidInput: 'Invalid input.',
  internalError: 'Something went wrong.',
  invalidCredentials: 'No active account found with the given credentials',
  usernameTaken: 'A user with that username already exists.',
  emailTaken: 'A user with that email address already exists.',
  wrongCurrentPassword: 'Your current password was entered incorrectly.',
  wrongPassword: 'Your password was entered incorrectly.',
  invalidEmail: 'Enter a valid email address.',
  sameEmail: 'This is already your email address.',
  mailTokenInvalid: 'Invalid or expired token.',
  mailCodeInvalid: 'Invalid or expired code.',
  proofRequired: 'Give the token, or the email address and the code.',
  accountDisabled: 'This account is disabled.',
  adminToken: 'The admin API needs the ADMIN_TOKEN as a Bearer token.',
  invalidDateTime: 'Datetime has wrong format. Use an RFC 3339 time, such as 2026-11-01T00:00:00Z.',
  cohortOnly: 'Sessions are minted only for users of a tagged cohort, never for imported users.',
  passwordOrHash: 'Give either password or password_hash.',
  invalidPasswordHash: 'Enter an argon2id hash in PHC format ($argon2id$v=19$m=…,t=…,p=…$salt$hash).',
  emailUnverified: 'Verify your email address before logging in: use the link or code mailed to you.',
  resetAccepted: 'If an account has this address, a password reset mail is on its way.',
  verificationAccepted: 'A verification mail is on its way, unless the address is verified already.',
  emailChangeAccepted: 'A confirmation mail is on its way to the new address.',
  notAuthenticated: 'Authentication credentials were not provided.',
  metricsToken: 'Metrics need the METRICS_TOKEN as a Bearer token.',
  metricsUnavailable: 'Not every worker answered with its metrics; retry shortly.',
  introspectionSecret: 'Introspection needs the introspection secret as a Bearer token.',
  tokenInvalid: 'Token is invalid or malformed',
  tokenWrongType: 'Token has wrong type',
  tokenExpired: 'Token is expired',
  tokenRevoked: 'Token has been revoked',
  tokenReused: 'Token was already used; the session has been revoked',
  sessionTooOld: 'Session has reached its maximum age',
  userNotFound: 'User not found',
  noSuchSession: 'No such session.',
  hashingBusy: 'Too many password checks in progress; retry shortly.',
  throttled: (seconds: number) => `Request was throttled. Expected available in ${seconds} seconds.`,
  routeNotFound: (method: string, url: string) => `Route ${method} ${url.split('?')[0]?.slice(0, 200)} not found`
} as const

export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
  /** The message again, where Django REST framework clients read it. */
  detail: string
  errors?: Record<string, string[]>
}

/** The one shape of every error answer: the status, its reason phrase, our code, a message (twice) and field errors. */
export function errorBody (statusCode: number, code: string, message: string, errors?: Record<string, string[]>): ErrorBody {
  // Every status the service answers with is a standard one, which STATUS_CODES names.
  // detail: the message where DRF clients read it.
  const body: ErrorBody = { statusCode, error: STATUS_CODES[statusCode] as string, code, message, detail: message }
  if (errors !== undefined) body.errors = errors
  return body
}

/** The code for errors that carry none of ours, such as Fastify's own 4xx errors. */
export const codeForStatus: Record<number, ErrorCode> = {
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  500: 'internal_error',
  503: 'service_unavailable'
}

export const isErrorCode = (code: unknown): code is ErrorCode =>
  typeof code === 'string' && /^[a-z_]+$/.test(code)

/** An error the error handler answers as errorBody(statusCode, code, message), with any headers given. */
export function apiError (statusCode: number, code: ErrorCode, message: string, properties: object = {}) {
  return httpErrors.createError(statusCode, message, { code, ...properties })
}

export function fieldErrors (errors: Record<string, string[]>) {
  return apiError(400, 'invalid_request', messages.invalidInput, { errors })
}

/** A 401 for a bad bearer or refresh token, with the RFC 6750 challenge. */
export function tokenError (code: 'token_invalid' | 'token_expired' | 'token_revoked' | 'token_reused', message: string) {
  return apiError(401, code, message, {
    headers: { 'www-authenticate': `Bearer realm="api", error="invalid_token", error_description="${message}"` }
  })
}

/** A 401 for a request without the credentials a route needs, with its challenge. */
export function notAuthenticated (message: string, realm: string) {
  return apiError(401, 'not_authenticated', message, { headers: { 'www-authenticate': `Bearer realm="${realm}"` } })
}

/** A 429 with Retry-After. */
export function throttledError (waitMs: number) {
  const seconds = Math.ceil(waitMs / 1000)
  return apiError(429, 'throttled', messages.throttled(seconds), { headers: { 'retry-after': String(seconds) } })
}
