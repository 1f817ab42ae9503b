import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'
import { assertAnswer, assertStillAnswers, issueMailToken, mailTokenState, proofKinds, proofRoutes, type Expected } from './cases.js'

/** base64url of a value's JSON, or of a string taken as the raw JSON text. */
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A compact JWS of header and payload (objects, or raw JSON text), signed with key, or with an empty signature. */
function jws (header: unknown, payload: unknown, key?: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${key === undefined ? '' : sign(null, Buffer.from(input), key).toString('base64url')}`
}

const hs256 = (header: object, payloadSegment: string, secret: string) => {
  const input = `${b64({ ...header, alg: 'HS256' })}.${payloadSegment}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

t.test('hostile JWTs', async (t) => {
  // The service signs with a key of ours, so the claims it checks can be tested one at a time.
  const serviceKey = generateKeyPairSync('ed25519')
  const privatePem = serviceKey.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
  const app = await build(t, await testEnvironment(t, { JWT_PRIVATE_KEY: privatePem }))
  const { user, tokens: pair } = await registerAndLogin(app)
  const second = await registerAndLogin(app)

  const jwksResponse = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(jwksResponse.statusCode, 200)
  const jwk = jwksResponse.json().keys[0] as { kty: string, crv: string, x: string, kid: string }
  const publicPem = serviceKey.publicKey.export({ format: 'pem', type: 'spki' }) as string
  t.equal(jwk.x, (serviceKey.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'the JWKS serves the key we configured')

  const [headerSegment, payloadSegment, signatureSegment] = pair.access.split('.') as [string, string, string]
  const header = JSON.parse(Buffer.from(headerSegment, 'base64url').toString()) as Record<string, unknown>
  t.same(header, { alg: 'EdDSA', typ: 'at+jwt', kid: jwk.kid }, 'the header the service signs')
  const claims = claimsOf(pair.access)
  const now = Math.floor(Date.now() / 1000)
  const signed = (payload: unknown, head: unknown = header) => jws(head, payload, serviceKey.privateKey)
  const attacker = generateKeyPairSync('ed25519')
  const attackerJwk = attacker.publicKey.export({ format: 'jwk' })
  const byAttacker = (head: object, payload: unknown = claims) => jws({ ...header, ...head }, payload, attacker.privateKey)
  /** The real signature over a header it was not made for. */
  const withHeader = (head: object) => `${b64({ ...header, ...head })}.${payloadSegment}.${signatureSegment}`
  const withoutKey = (rest: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(rest).filter(([name]) => name !== key))

  const invalid: Expected = { status: 401, code: 'token_invalid' }
  const expired: Expected = { status: 401, code: 'token_expired' }
  const ok: Expected = { status: 200 }

  t.test('GET /auth/me/ with a hostile bearer token', async (t) => {
    const cases: Array<[string, string, Expected]> = [
      // alg none, in any case, with the claims of a real token and no signature.
      ['alg none', jws({ alg: 'none', typ: 'JWT' }, claims), invalid],
      ['alg NONE', jws({ alg: 'NONE', typ: 'JWT' }, claims), invalid],
      ['alg nOnE', jws({ alg: 'nOnE', typ: 'JWT' }, claims), invalid],
      ['alg none keeping the real signature', `${b64({ alg: 'none', typ: 'JWT' })}.${payloadSegment}.${signatureSegment}`, invalid],
      ['alg EdDSA with the signature cut off', `${headerSegment}.${payloadSegment}.`, invalid],
      ['alg missing', signed(claims, { typ: 'JWT', kid: jwk.kid }), invalid],
      ['alg Ed25519', signed(claims, { ...header, alg: 'Ed25519' }), invalid],
      ['alg as an array', signed(claims, { ...header, alg: ['EdDSA'] }), invalid],
      // Algorithm confusion: HMAC keyed with the public key the service publishes.
      ['HS256 keyed with the public key PEM', hs256(header, payloadSegment, publicPem), invalid],
      ['HS256 keyed with the PEM, leading whitespace', hs256(header, payloadSegment, `\n  ${publicPem}`), invalid],
      ['HS256 keyed with the PEM, no trailing newline', hs256(header, payloadSegment, publicPem.trimEnd()), invalid],
      ['HS256 keyed with the JWK JSON', hs256(header, payloadSegment, JSON.stringify(jwk)), invalid],
      ['HS256 keyed with the JWK x', hs256(header, payloadSegment, jwk.x), invalid],
      ['HS256 keyed with an empty secret', hs256(header, payloadSegment, ''), invalid],
      ['RS256 header with the real EdDSA signature', withHeader({ alg: 'RS256' }), invalid],
      // kid holding a path, SQL or 10 KB: the real signature no longer covers the header.
      ['kid a path', withHeader({ kid: '../../etc/passwd' }), invalid],
      ['kid /dev/null', withHeader({ kid: '/dev/null' }), invalid],
      ['kid SQL', withHeader({ kid: "' OR 1=1 --" }), invalid],
      ['kid 4 KB (parsed: under the 8 KiB limit)', withHeader({ kid: 'k'.repeat(4 * 1024) }), invalid],
      ['kid 10 KB', withHeader({ kid: 'k'.repeat(10 * 1024) }), invalid],
      ['kid a number', withHeader({ kid: 1 }), invalid],
      // Keys named or embedded by the token, signed by the attacker's key.
      ['jku to an attacker JWKS', byAttacker({ jku: 'https://attacker.example/jwks.json' }), invalid],
      ['x5u to an attacker certificate', byAttacker({ x5u: 'https://attacker.example/cert.pem' }), invalid],
      ['jwk embedding the attacker key', byAttacker({ jwk: attackerJwk }), invalid],
      ['jwk embedding the attacker key, kid of the service', byAttacker({ jwk: { ...attackerJwk, kid: jwk.kid }, kid: jwk.kid }), invalid],
      ['x5c with garbage', byAttacker({ x5c: ['MIIB'] }), invalid],
      // crit, signed with the service's own key: extensions it does not understand are refused.
      ['crit naming an unknown extension', signed(claims, { ...header, crit: ['x-attacker'], 'x-attacker': true }), invalid],
      ['crit naming an absent extension', signed(claims, { ...header, crit: ['x-absent'] }), invalid],
      ['crit naming a registered header', signed(claims, { ...header, crit: ['alg'] }), invalid],
      ['crit empty', signed(claims, { ...header, crit: [] }), invalid],
      ['crit a string', signed(claims, { ...header, crit: 'exp' }), invalid],
      // Payloads that are not a claims object, signed with the service's key.
      ['an array payload', signed([claims]), invalid],
      ['a string payload', signed('"hello"'), invalid],
      ['a null payload', signed('null'), invalid],
      ['a payload that is not JSON', signed('{"sub":'), invalid],
      ['a header that is an array', signed(claims, [header]), invalid],
      ['a header that is not JSON', `${b64('{"alg":')}.${payloadSegment}.${signatureSegment}`, invalid],
      // Claims, signed with the service's key.
      ['exp as a string', signed({ ...claims, exp: String(now + 600) }), invalid],
      ['exp as an ISO date', signed({ ...claims, exp: new Date((now + 600) * 1000).toISOString() }), invalid],
      ['exp as an array', signed({ ...claims, exp: [now + 600] }), invalid],
      ['exp null', signed({ ...claims, exp: null }), invalid],
      ['exp a float in the past', signed({ ...claims, exp: now - 60.5 }), expired],
      // The service signs whole seconds only: a float, or a number too large to be a date, is refused.
      ['exp a float in the future', signed({ ...claims, exp: now + 600.5 }), invalid],
      ['exp 1e20 (never expires)', signed({ ...claims, exp: 1e20 }), invalid],
      ['exp 1e309 (infinity)', signed(JSON.stringify({ ...claims, exp: 0 }).replace('"exp":0', '"exp":1e309')), invalid],
      ['iat as a string', signed({ ...claims, iat: String(claims.iat) }), invalid],
      ['iat in the future', signed({ ...claims, iat: now + 3600 }), invalid],
      ['iat 0', signed({ ...claims, iat: 0 }), invalid],
      ['user_id as a string', signed({ ...claims, user_id: String(claims.user_id) }), invalid],
      ['user_id a float', signed({ ...claims, user_id: Number(claims.user_id) + 0.5 }), invalid],
      ['user_id 0', signed({ ...claims, sub: '0', user_id: 0 }), invalid],
      ['user_id 1e12, past PostgreSQL integer', signed({ ...claims, sub: '1000000000000', user_id: 1e12 }), invalid],
      ['user_id an object', signed({ ...claims, user_id: { id: claims.user_id } }), invalid],
      ['user_id missing', signed(withoutKey(claims, 'user_id')), invalid],
      ['sub not the user_id', signed({ ...claims, sub: String(Number(claims.user_id) + 1) }), invalid],
      ['sid not a UUID', signed({ ...claims, sid: 'not-a-uuid' }), invalid],
      ['sid a number', signed({ ...claims, sid: 42 }), invalid],
      ['sid a UUID with a NUL', signed({ ...claims, sid: `${String(claims.sid)}\u0000` }), invalid],
      ['jti not a UUID', signed({ ...claims, jti: "' OR 1=1 --" }), invalid],
      ['username missing', signed(withoutKey(claims, 'username')), invalid],
      ['username a number', signed({ ...claims, username: 7 }), invalid],
      ['exp missing', signed(withoutKey(claims, 'exp')), invalid],
      ['exp in the past', signed({ ...claims, iat: now - 120, exp: now - 60 }), expired],
      ['exp -1e309 (negative infinity)', signed(JSON.stringify({ ...claims, exp: 0 }).replace('"exp":0', '"exp":-1e309')), invalid],
      ['iat missing', signed(withoutKey(claims, 'iat')), invalid],
      ['nbf in the future', signed({ ...claims, nbf: now + 3600 }), invalid],
      ['nbf as a string', signed({ ...claims, nbf: String(now - 10) }), invalid],
      ['a wrong iss', signed({ ...claims, iss: 'attacker' }), invalid],
      ['iss missing', signed(withoutKey(claims, 'iss')), invalid],
      ['iss as a number', signed({ ...claims, iss: 1 }), invalid],
      ['a wrong aud', signed({ ...claims, aud: 'other-api' }), invalid],
      ['aud an array without ours', signed({ ...claims, aud: ['other-api', 'third'] }), invalid],
      ['aud missing', signed(withoutKey(claims, 'aud')), invalid],
      ['aud of refresh tokens (the issuer) on an access token', signed({ ...claims, aud: claims.iss }), invalid],
      ['iss and aud as regular expression bait', signed({ ...claims, iss: '.*', aud: '.*' }), invalid],
      ['sid missing', signed(withoutKey(claims, 'sid')), invalid],
      ['token_type missing', signed(withoutKey(claims, 'token_type')), invalid],
      ['token_type refresh', signed({ ...claims, token_type: 'refresh' }), invalid],
      ['token_type ACCESS', signed({ ...claims, token_type: 'ACCESS' }), invalid],
      ['user_id of no user', signed({ ...claims, sub: '999999', user_id: 999999 }), invalid],
      ['claims from another user over this user\'s signature', `${headerSegment}.${second.tokens.access.split('.')[1]}.${signatureSegment}`, invalid],
      // The wrong kind of token.
      ['a refresh token', pair.refresh, invalid],
      // Segments that are not canonical base64url, around the real token.
      ['= padding on the header', `${headerSegment}=.${payloadSegment}.${signatureSegment}`, invalid],
      ['= padding on the payload', `${headerSegment}.${payloadSegment}==.${signatureSegment}`, invalid],
      ['= padding on the signature', `${pair.access}==`, invalid],
      ['a tab inside the payload', `${headerSegment}.${payloadSegment.slice(0, 10)}\t${payloadSegment.slice(10)}.${signatureSegment}`, invalid],
      ['a newline inside the signature', `${headerSegment}.${payloadSegment}.${signatureSegment.slice(0, 10)}\n${signatureSegment.slice(10)}`, invalid],
      ['standard base64 (+ and /) in the signature', `${headerSegment}.${payloadSegment}.${signatureSegment.replaceAll('-', '+').replaceAll('_', '/')}${/[-_]/.test(signatureSegment) ? '' : '+'}`, invalid],
      ['a signature one character short', pair.access.slice(0, -1), invalid],
      // The last character of 64 bytes in base64url holds 2 bits; its 4 spare bits give 15 other spellings.
      ...Array.from({ length: 15 }, (_, spare) => {
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
        const last = alphabet.indexOf(signatureSegment.at(-1)!)
        const spelling = `${pair.access.slice(0, -1)}${alphabet[(last & 0b110000) | ((last + spare + 1) & 0b1111)]}`
        return [`a non-canonical spelling of the signature (${spare + 1} of 15)`, spelling, invalid] as [string, string, Expected]
      }),
      ['a signature with a character changed', `${pair.access.slice(0, -2)}${pair.access.at(-2) === 'A' ? 'B' : 'A'}${pair.access.at(-1)}`, invalid],
      ['two segments', `${headerSegment}.${payloadSegment}`, invalid],
      ['four segments', `${pair.access}.${signatureSegment}`, invalid],
      ['one segment', headerSegment, invalid],
      ['only dots', '..', invalid],
      ['a 1 MB token', `${headerSegment}.${'A'.repeat(1024 * 1024)}.${signatureSegment}`, invalid],
      ['non-ASCII in the token', `${pair.access.slice(0, 20)}é${pair.access.slice(21)}`, invalid],
      // A token signed with the service's key that RFC 7519 allows: accepted, and must stay so.
      ['aud an array holding ours', signed({ ...claims, aud: ['other-api', 'api'] }), ok]
    ]
    for (const [name, token, expected] of cases) {
      const response = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(token) })
      assertAnswer(t, response, expected, name)
      if (expected.status === 401) {
        t.match(response.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token"/, `${name}: the challenge`)
      }
    }
    const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })
    t.same(me.json(), user, 'the real token still answers its own user')
    await assertStillAnswers(t, app, pair.access)
  })

  t.test('GET /auth/me/ with a hostile Authorization header around a real token', async (t) => {
    const cases: Array<[string, string, Expected]> = [
      ['two spaces after Bearer', `Bearer  ${pair.access}`, invalid],
      ['a trailing space', `Bearer ${pair.access} `, invalid],
      ['a tab after Bearer', `Bearer\t${pair.access}`, invalid],
      ['the token alone', pair.access, invalid],
      ['scheme Token', `Token ${pair.access}`, invalid],
      ['scheme JWT', `JWT ${pair.access}`, invalid],
      ['two tokens, comma-separated', `Bearer ${pair.access},${pair.access}`, invalid],
      ['an empty header', '', invalid],
      ['a 1 MB header of spaces', `Bearer ${' '.repeat(1024 * 1024)}`, invalid],
      ['scheme BEARER (case-insensitive, RFC 7235)', `BEARER ${pair.access}`, ok]
    ]
    for (const [name, authorization, expected] of cases) {
      assertAnswer(t, await app.inject({ method: 'GET', url: '/auth/me/', headers: { authorization } }), expected, name)
    }
    await assertStillAnswers(t, app, pair.access)
  })

  t.test('POST /auth/refresh/ with a hostile refresh token', async (t) => {
    const { tokens: victim } = await registerAndLogin(app)
    const refreshClaims = claimsOf(victim.refresh)
    const [refreshHeader, refreshPayload, refreshSignature] = victim.refresh.split('.') as [string, string, string]
    const cases: Array<[string, unknown, Expected]> = [
      ['an access token', { refresh: victim.access }, invalid],
      ['alg none', { refresh: jws({ alg: 'none', typ: 'JWT' }, refreshClaims) }, invalid],
      ['alg NONE', { refresh: jws({ alg: 'NONE', typ: 'JWT' }, refreshClaims) }, invalid],
      ['HS256 keyed with the public key PEM', { refresh: hs256(header, refreshPayload, publicPem) }, invalid],
      ['HS256 keyed with the JWK JSON', { refresh: hs256(header, refreshPayload, JSON.stringify(jwk)) }, invalid],
      ['jwk embedding the attacker key', { refresh: byAttacker({ jwk: attackerJwk }, refreshClaims) }, invalid],
      ['kid SQL over the real signature', { refresh: `${b64({ ...header, kid: "' OR 1=1 --" })}.${refreshPayload}.${refreshSignature}` }, invalid],
      ['an expired refresh token', { refresh: signed({ ...refreshClaims, iat: now - 120, exp: now - 60 }) }, expired],
      // Signed by the service's key but never issued: no row has its hash.
      ['a refresh token never issued', { refresh: signed({ ...refreshClaims, iat: now - 1 }) }, invalid],
      ['an array payload', { refresh: signed([refreshClaims]) }, invalid],
      ['sid not a UUID', { refresh: signed({ ...refreshClaims, sid: 'not-a-uuid' }) }, invalid],
      ['sid an object', { refresh: signed({ ...refreshClaims, sid: { id: 1 } }) }, invalid],
      ['jti not a UUID', { refresh: signed({ ...refreshClaims, jti: 'x\u0000y' }) }, invalid],
      ['user_id as a string', { refresh: signed({ ...refreshClaims, user_id: String(refreshClaims.user_id) }) }, invalid],
      ['token_type id', { refresh: signed({ ...refreshClaims, token_type: 'id' }) }, invalid],
      ['= padding on the signature', { refresh: `${victim.refresh}=` }, invalid],
      ['a space inside the signature', { refresh: `${refreshHeader}.${refreshPayload}.${refreshSignature.slice(0, 8)} ${refreshSignature.slice(8)}` }, invalid],
      ['leading and trailing whitespace', { refresh: ` ${victim.refresh}\n` }, invalid],
      ['two segments', { refresh: `${refreshHeader}.${refreshPayload}` }, invalid],
      ['four segments', { refresh: `${victim.refresh}.${refreshSignature}` }, invalid],
      // The body rules answer before any token is read.
      ['an empty token', { refresh: '' }, { status: 400, code: 'invalid_request' }],
      ['a token over 8192 characters', { refresh: `${refreshHeader}.${'A'.repeat(9000)}.${refreshSignature}` }, { status: 400, code: 'invalid_request' }],
      ['a 1 MB token', { refresh: `${refreshHeader}.${'A'.repeat(1024 * 1024)}.${refreshSignature}` }, { status: 413, code: 'payload_too_large' }],
      ['a token as an array', { refresh: [victim.refresh] }, { status: 400, code: 'invalid_request' }]
    ]
    for (const [name, payload, expected] of cases) {
      const response = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: payload as object })
      assertAnswer(t, response, expected, name)
    }
    // Nothing above consumed or revoked the victim's session.
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: victim.refresh } })
    t.equal(refreshed.statusCode, 200, 'the real refresh token still refreshes')
    await assertStillAnswers(t, app, refreshed.json().access)
  })

  t.test('a 1 MB bearer token over a real socket never reaches the app', async (t) => {
    // inject() skips Node's HTTP parser; a real client meets its 16 KiB header limit first.
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, path: '/auth/me/', headers: bearer('A'.repeat(1024 * 1024)) }, (response) => {
        response.resume()
        resolve(response.statusCode)
      })
      // Node may also close the socket while the header is still being written.
      request.on('error', (error: NodeJS.ErrnoException) => error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve(undefined) : reject(error))
      request.end()
    })
    t.ok(status === 431 || status === undefined, `431 Request Header Fields Too Large, or the connection closed (got ${status})`)
    const live = await fetch(`http://127.0.0.1:${port}/health/live`)
    t.equal(live.status, 200, 'still answering over the socket')
    const me = await fetch(`http://127.0.0.1:${port}/auth/me/`, { headers: bearer(pair.access) })
    t.equal(me.status, 200, 'the real token still works over the socket')
  })

  t.test('a refresh token used as an access token, and the other way round', async (t) => {
    const { tokens } = await registerAndLogin(app)
    assertAnswer(t, await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.refresh) }), invalid, 'refresh as access')
    assertAnswer(t, await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.access } }), invalid, 'access as refresh')
    assertAnswer(t, await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: tokens.access } }), invalid, 'access to logout')
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).statusCode, 200, 'the access token still works')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })).statusCode, 200, 'the refresh token still works')
  })

  t.test('the mail routes: a hostile bearer token, and a JWT where a mailed token belongs', async (t) => {
    const owner = await registerAndLogin(app)
    const ownerClaims = claimsOf(owner.tokens.access)
    const [ownerHeader, ownerPayload, ownerSignature] = owner.tokens.access.split('.') as [string, string, string]
    for (const kind of Object.values(proofKinds)) await issueMailToken(app, owner.user.id, kind, owner.body.email)
    const before = await mailTokenState(app, owner.user.id)

    const bearers: Array<[string, string, Expected]> = [
      ['alg none', jws({ alg: 'none', typ: 'JWT' }, ownerClaims), invalid],
      ['alg none keeping the real signature', `${b64({ alg: 'none', typ: 'JWT' })}.${ownerPayload}.${ownerSignature}`, invalid],
      ['HS256 keyed with the public key PEM', hs256(header, ownerPayload, publicPem), invalid],
      ['jwk embedding the attacker key', byAttacker({ jwk: attackerJwk }, ownerClaims), invalid],
      ['claims from another user over this user\'s signature', `${ownerHeader}.${payloadSegment}.${ownerSignature}`, invalid],
      ['a signature one character short', owner.tokens.access.slice(0, -1), invalid],
      ['the refresh token', owner.tokens.refresh, invalid],
      ['expired', signed({ ...ownerClaims, iat: now - 120, exp: now - 60 }), expired]
    ]
    // The email change carries the right password: a hostile token must stop it before the body is read.
    const protectedRoutes: Array<[string, object | undefined]> = [
      ['/auth/email/verify/resend/', undefined],
      ['/auth/email/change/', { password: owner.body.password, new_email: `new-${owner.body.email}` }]
    ]
    for (const [url, payload] of protectedRoutes) {
      for (const [name, token, expected] of bearers) {
        const response = await app.inject({ method: 'POST', url, headers: bearer(token), ...(payload === undefined ? {} : { payload }) })
        assertAnswer(t, response, expected, `${url} ${name}`)
        t.match(response.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token"/, `${url} ${name}: the challenge`)
      }
    }

    // A mailed token is 32 random bytes, not a JWT: one there is refused as any other wrong token, long ones by the body rules.
    const shortJwt = jws({ alg: 'EdDSA' }, { sub: String(owner.user.id) }, serviceKey.privateKey)
    t.ok(shortJwt.length <= 128, `a JWT signed by the service within the 128 characters of a mailed token (${shortJwt.length})`)
    const wrongToken = { token: ['Invalid or expired token.'] }
    const tooLong = { token: ['Ensure this field has no more than 128 characters.'] }
    const proofs: Array<[string, string, Record<string, string[]>]> = [
      ['the access token', owner.tokens.access, tooLong],
      ['the refresh token', owner.tokens.refresh, tooLong],
      ['a JWT signed by the service', shortJwt, wrongToken],
      ['a JWT with alg none', jws({ alg: 'none' }, { sub: String(owner.user.id) }), wrongToken],
      ['a JWT with a NUL after it', `${shortJwt.slice(0, 100)}\u0000`, wrongToken],
      ['a JWT with %00 between its segments', shortJwt.replace('.', '%00.').slice(0, 128), wrongToken],
      ['only dots', '..', wrongToken],
      ['the access token\'s header alone', ownerHeader, wrongToken]
    ]
    for (const url of proofRoutes) {
      for (const [name, token, errors] of proofs) {
        const payload = url === '/auth/password/reset/confirm/' ? { token, new_password: 'a brand new passphrase' } : { token }
        const response = await app.inject({ method: 'POST', url, payload })
        assertAnswer(t, response, { status: 400, code: 'invalid_request' }, `${url} ${name}`)
        t.same(response.json().errors, errors, `${url} ${name}: the token is the field at fault`)
      }
    }
    t.same(await mailTokenState(app, owner.user.id), before, 'no mail token issued or used')
    assertAnswer(t, await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: owner.body.username, password: owner.body.password } }), ok, 'the password is unchanged')
    await assertStillAnswers(t, app, owner.tokens.access)
  })
})
