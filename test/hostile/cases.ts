import { asc, eq } from 'drizzle-orm'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { MailTokenKind } from '../../plugins/mail-tokens.js'
import { mailTokens } from '../../src/db/schema.js'
import { bearer } from '../helper.js'

/** What a hostile case must get back: a status, and the `code` of the error body when it is an error. */
export interface Expected {
  status: number
  code?: string
}

/**
 * Asserts the exact status and, for an error, the exact JSON `code`; an error must be a client
 * error in the service's shape, never a 5xx.
 */
export function assertAnswer (t: Test, response: LightMyRequestResponse, expected: Expected, name: string): void {
  t.equal(response.statusCode, expected.status, `${name}: status`)
  if (expected.status < 400) return
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${name}: a client error, not a ${response.statusCode}`)
  t.match(response.headers['content-type'], /^application\/json/, `${name}: a JSON body`)
  let body: { statusCode?: unknown, code?: unknown, error?: unknown, message?: unknown } = {}
  try {
    body = response.json()
  } catch {
    t.fail(`${name}: the body is not JSON: ${response.body.slice(0, 200)}`)
  }
  t.equal(body.code, expected.code, `${name}: code`)
  t.equal(body.statusCode, response.statusCode, `${name}: statusCode in the body`)
  t.type(body.message, 'string', `${name}: a message`)
}

/** The service still answers: alive, and, given a live access token, still authenticating. */
export async function assertStillAnswers (t: Test, app: FastifyInstance, access?: string): Promise<void> {
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200, 'still alive')
  if (access !== undefined) {
    const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })
    t.equal(me.statusCode, 200, 'a valid access token still works')
  }
}

/** A raw JSON text POSTed as application/json (or with the headers given); no payload sends no body. */
export const postRaw = (app: FastifyInstance, url: string, payload: string | Buffer | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  app.inject({ method: 'POST', url, payload, headers })

export const login = (app: FastifyInstance, username: string, password: string) =>
  app.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })

export const register = (app: FastifyInstance, body: { username: string, email: string, password: string }) =>
  app.inject({ method: 'POST', url: '/auth/register/', payload: body })

/** The routes of a mailed proof (a token, or an email and a code): their bodies share the fields and the rules. */
export const proofRoutes = ['/auth/password/reset/confirm/', '/auth/email/verify/', '/auth/email/change/confirm/'] as const
export type ProofRoute = typeof proofRoutes[number]
/** The kind of mail token each proof route uses. */
export const proofKinds: Record<ProofRoute, MailTokenKind> = {
  '/auth/password/reset/confirm/': 'password_reset',
  '/auth/email/verify/': 'email_verify',
  '/auth/email/change/confirm/': 'email_change'
}

/** A live mail token of the user, as its mail carries it: the link token and the 6-digit code. Any older one of its kind is dead. */
export const issueMailToken = (app: FastifyInstance, userId: number, kind: MailTokenKind, email: string) =>
  app.db.transaction((tx) => app.mailTokens.issue(tx, userId, kind, email, 3600))

/**
 * The mail tokens of a user (of every user without one) as a hostile request must leave them: none issued, none
 * used, no code attempt counted. Waits for the password resets in flight, which issue theirs after the answer.
 */
export async function mailTokenState (app: FastifyInstance, userId?: number) {
  await app.accountMail.settled()
  return app.db.select({ id: mailTokens.id, kind: mailTokens.kind, email: mailTokens.email, consumedAt: mailTokens.consumedAt, codeAttempts: mailTokens.codeAttempts })
    .from(mailTokens).where(userId === undefined ? undefined : eq(mailTokens.userId, userId)).orderBy(asc(mailTokens.id))
}
