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

export function apiError (statusCode: number, code: ErrorCode, message: string, properties: object = {}) {
  return httpErrors.createError(statusCode, message, { code, ...properties })
}

export function fieldErrors (errors: Record<string, string[]>) {
  return apiError(400, 'invalid_request', 'Invalid input.', { errors })
}

/** A 401 for a bad bearer or refresh token, with the RFC 6750 challenge. */
export function tokenError (code: 'token_invalid' | 'token_expired' | 'token_revoked' | 'token_reused', message: string) {
  return apiError(401, code, message, {
    headers: { 'www-authenticate': `Bearer realm="api", error="invalid_token", error_description="${message}"` }
  })
}
