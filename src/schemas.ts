import { Type } from 'typebox'

// Every body refuses these keys: unknown fields are dropped, but these are refused outright, so that no
// code that copies a body can be steered into an object's prototype.
const body = { additionalProperties: false, propertyNames: { not: { enum: ['__proto__', 'constructor', 'prototype'] } } }

export const RegisterBody = Type.Object({
  username: Type.String({ minLength: 3, maxLength: 150 }),
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 8, maxLength: 256 })
}, { ...body, examples: [{ username: 'ada', email: 'ada@example.com', password: 'correct horse battery staple' }] })

export const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 254, description: 'The username or the email address, in any case' }),
  password: Type.String({ minLength: 1, maxLength: 256 }),
  device_token: Type.Optional(Type.String({ maxLength: 512, description: 'The device_token of an earlier login of this account on this device: exempt from the account-wide waits' }))
}, { ...body, examples: [{ username: 'ada', password: 'correct horse battery staple' }] })

const exampleToken = 'eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'

export const RefreshBody = Type.Object({
  refresh: Type.String({ minLength: 1, maxLength: 8192 })
}, { ...body, examples: [{ refresh: exampleToken }] })

export const User = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  email_verified: Type.Boolean({ description: 'Whether the user has proved to own the address' }),
  created_at: Type.String({ format: 'date-time' })
})

export const TokenPair = Type.Object({
  access: Type.String(),
  refresh: Type.String(),
  token_type: Type.Literal('Bearer'),
  access_expires_at: Type.String({ format: 'date-time' }),
  refresh_expires_at: Type.String({ format: 'date-time' })
})

export const LoginAnswer = Type.Object({
  ...TokenPair.properties,
  device_token: Type.String({ description: 'Keep it, as the refresh token, and send it with the next login of this account from this device' })
})

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String(),
  message: Type.String(),
  detail: Type.String({ description: 'The message again, where Django REST framework clients read it' }),
  errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String())))
})

/** What any route with a JSON body may also answer: bad input, a body too large or not JSON, our failure. */
export const bodyErrors = { 400: ErrorBody, 413: ErrorBody, 415: ErrorBody, 500: ErrorBody }

/** What a route that hashes a password may also answer: every hashing slot and the queue are taken. */
export const hashingErrors = { 503: ErrorBody }

/** What a rate-limited route may also answer. */
export const throttledErrors = { 429: ErrorBody }

export const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    crv: Type.String(),
    x: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.String()
  }))
})

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')])
})

export function toUser (row: { id: number, username: string, email: string, emailVerified: boolean, createdAt: Date }) {
  return { id: row.id, username: row.username, email: row.email, email_verified: row.emailVerified, created_at: row.createdAt.toISOString() }
}

export const Session = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The sid claim of the session\'s tokens' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean({ description: 'True for the session of the access token presented' })
})

export const PasswordChangeBody = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: 256 }),
  new_password: Type.String({ minLength: 8, maxLength: 256 })
}, { ...body, examples: [{ current_password: 'correct horse battery staple', new_password: 'a new and longer passphrase' }] })

export const TokenBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 8192 }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 }))
}, { ...body, examples: [{ token: exampleToken, token_type_hint: 'access_token' }] })

const exampleMailToken = 'q3Xh8Jc0m1b2Wv9sZ7rT5yN4uK6pL0aE3dF8gH1jB2c'
const MailToken = Type.String({ minLength: 1, maxLength: 128, description: 'The token of the mailed link' })
const Code = Type.String({ pattern: '^[0-9]{6}$', description: 'The 6-digit code of the mail' })
const Email = Type.String({ minLength: 3, maxLength: 254 })

export const PasswordResetBody = Type.Object({
  email: Email
}, { ...body, examples: [{ email: 'ada@example.com' }] })

export const PasswordResetConfirmBody = Type.Object({
  token: Type.Optional(MailToken),
  email: Type.Optional({ ...Email, description: 'With code: the address the mail went to' }),
  code: Type.Optional(Code),
  new_password: Type.String({ minLength: 8, maxLength: 256 })
}, { ...body, description: 'The token, or the email and the code', examples: [{ token: exampleMailToken, new_password: 'a new and longer passphrase' }, { email: 'ada@example.com', code: '042917', new_password: 'a new and longer passphrase' }] })

export const EmailVerifyBody = Type.Object({
  token: Type.Optional(MailToken),
  email: Type.Optional({ ...Email, description: 'With code: the address the mail went to' }),
  code: Type.Optional(Code)
}, { ...body, description: 'The token, or the email and the code', examples: [{ token: exampleMailToken }, { email: 'ada@example.com', code: '042917' }] })

export const EmailChangeBody = Type.Object({
  password: Type.String({ minLength: 1, maxLength: 256 }),
  new_email: Email
}, { ...body, examples: [{ password: 'correct horse battery staple', new_email: 'ada@example.org' }] })

export const EmailChangeConfirmBody = Type.Object({
  token: Type.Optional(MailToken),
  email: Type.Optional({ ...Email, description: 'With code: the new address, which the mail went to' }),
  code: Type.Optional(Code)
}, { ...body, description: 'The token, or the new email and the code', examples: [{ token: exampleMailToken }] })

/** The one answer of a request that may send a mail, whatever happened: it must not tell which addresses exist. */
export const Accepted = Type.Object({ detail: Type.String() })

export const DeleteAccountBody = Type.Object({
  password: Type.String({ minLength: 1, maxLength: 256 })
}, { ...body, examples: [{ password: 'correct horse battery staple' }] })

const noNul = '^[^\\u0000]*$'

export const AdminUser = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  email_verified: Type.Boolean(),
  disabled: Type.Boolean(),
  tag: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  last_login_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

export const AdminUserDetail = Type.Object({
  ...AdminUser.properties,
  sessions: Type.Integer({ description: 'Live sessions' })
})

export function toAdminUser (row: { id: number, username: string, email: string, emailVerified: boolean, disabledAt: Date | null, tag: string | null, createdAt: Date, lastLoginAt: Date | null }) {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    email_verified: row.emailVerified,
    disabled: row.disabledAt !== null,
    tag: row.tag,
    created_at: row.createdAt.toISOString(),
    last_login_at: row.lastLoginAt?.toISOString() ?? null
  }
}

// Path and query values are strings: types are never coerced, so numbers and booleans are patterns here.
export const UserId = Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,9}$', description: 'The user\'s id' }) })

const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: noNul })

export const UserQuery = Type.Object({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 254, pattern: noNul, description: 'A prefix of the username or the email, in any case' })),
  tag: Type.Optional(Tag),
  disabled: Type.Optional(Type.Enum(['true', 'false'])),
  limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,2}|1000)$', description: '1 to 1000; 100 by default' })),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$', description: 'The next_cursor of the previous page' }))
})

export const UserList = Type.Object({
  users: Type.Array(AdminUser),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Null on the last page' })
})

export const CohortQuery = Type.Object({ tag: Tag })

export const NewUsersBody = Type.Object({
  users: Type.Array(Type.Object({
    username: Type.String({ minLength: 3, maxLength: 150 }),
    email: Type.String({ minLength: 3, maxLength: 254 }),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
    password_hash: Type.Optional(Type.String({ maxLength: 512, description: 'An argon2id hash in PHC format, instead of password' })),
    email_verified: Type.Optional(Type.Boolean())
  }, { additionalProperties: false }), { minItems: 1, maxItems: 1000 }),
  tag: Type.Optional(Tag)
}, { ...body, examples: [{ users: [{ username: 'load0001', email: 'load0001@example.com', password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA' }], tag: 'load-test' }] })

export const NewUsersAnswer = Type.Object({
  created: Type.Array(AdminUser),
  errors: Type.Array(Type.Object({ index: Type.Integer(), code: Type.String(), errors: Type.Record(Type.String(), Type.Array(Type.String())) }))
})

export const UserChangesBody = Type.Object({
  username: Type.Optional(Type.String({ minLength: 3, maxLength: 150 })),
  email: Type.Optional(Type.String({ minLength: 3, maxLength: 254 })),
  disabled: Type.Optional(Type.Boolean()),
  email_verified: Type.Optional(Type.Boolean())
}, { ...body, examples: [{ disabled: true }] })

export const Deleted = Type.Object({ deleted: Type.Integer() })

const EventCursor = Type.String({ pattern: '^[1-9][0-9]{0,14}$', description: 'The next_cursor of the previous page' })

export const AuditEvent = Type.Object({
  id: Type.String(),
  type: Type.String({ description: 'user.registered, login.succeeded, login.failed, …; admin.* for each admin call' }),
  created_at: Type.String({ format: 'date-time' }),
  user_id: Type.Union([Type.Integer(), Type.Null()]),
  session_id: Type.Union([Type.String(), Type.Null()]),
  actor: Type.Enum(['user', 'admin', 'system']),
  ip: Type.Union([Type.String(), Type.Null()], { description: 'Null once the user is deleted' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  detail: Type.Record(Type.String(), Type.Unknown())
})

export const EventList = Type.Object({
  events: Type.Array(AuditEvent),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Null on the last page' })
})

export const EventQuery = Type.Object({
  user_id: Type.Optional(UserId.properties.id),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z_.]+$' })),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'Only events at or after this time' })),
  limit: Type.Optional(UserQuery.properties.limit),
  cursor: Type.Optional(EventCursor)
})

export const OwnEventQuery = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]?|100)$', description: '1 to 100; 50 by default' })),
  cursor: Type.Optional(EventCursor)
})

export function toAuditEvent (row: { id: number, type: string, createdAt: Date, userId: number | null, sessionId: string | null, actor: string, ip: string | null, userAgent: string | null, detail: Record<string, unknown> }) {
  return {
    id: String(row.id),
    type: row.type,
    created_at: row.createdAt.toISOString(),
    user_id: row.userId,
    session_id: row.sessionId,
    actor: row.actor as 'user' | 'admin' | 'system',
    ip: row.ip,
    user_agent: row.userAgent,
    detail: row.detail
  }
}
