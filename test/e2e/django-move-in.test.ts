// The move from the old service, end to end: users and tokens made by the real Django + SimpleJWT service
// (../shared/django-service), imported, then logging in here with the same passwords and the same ids, and the
// refresh tokens in their phones exchanged once through the cutover window.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { eq } from 'drizzle-orm'
import postgres from 'postgres'
import t from 'tap'
import { main as importDjango } from '../../src/cli/import-django.js'
import { users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, djangoServiceDir, testEnvironment } from '../helper.js'

const run = promisify(execFile)
const djangoDir = djangoServiceDir()
const serverUrl = 'postgres://postgres@127.0.0.1:5432'

t.test('users and refresh tokens of the old service move in without a reset or a logout', async (t) => {
  const djangoDb = `django_move_${process.pid}_${randomBytes(3).toString('hex')}`
  const admin = postgres(`${serverUrl}/postgres`, { max: 1, onnotice: () => {} })
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${djangoDb}" with (force)`)
    await admin.end()
  })
  await run('bash', [join(djangoDir, 'setup.sh'), djangoDb])
  // Made by Django itself: its PBKDF2 hashes, SimpleJWT's tokens; one rotated there, which blacklists it.
  const made = await run('/usr/bin/python3', ['manage.py', 'shell', '-c', `
import json
from django.contrib.auth.models import User
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken
grace = User.objects.create_user('grace', 'grace@example.com', 'compiler for COBOL 1959')
zoe = User.objects.create_user('Zoë', 'zoe@example.com', 'a unicode passphrase')
User.objects.create_user('Ada', 'shared@example.com', 'correct horse battery staple')
User.objects.create_user('ada', 'shared@example.com', 'another long passphrase')
sleeper = User.objects.create_user('sleeper', 'sleeper@example.com', 'a dormant passphrase')
sleeper.is_active = False
sleeper.save()
User.objects.create_user('nopass', 'nopass@example.com')
rotated = RefreshToken.for_user(grace)
serializer = TokenRefreshSerializer(data={'refresh': str(rotated)})
serializer.is_valid(raise_exception=True)
print(json.dumps({
  'ids': {user.username: user.id for user in User.objects.all()},
  'grace': str(RefreshToken.for_user(grace)),
  'zoe': str(RefreshToken.for_user(zoe)),
  'blacklisted': str(rotated),
  'rotated': serializer.validated_data['refresh'],
  'sleeper': str(RefreshToken.for_user(sleeper)),
}))
`], { cwd: djangoDir, env: { ...process.env, SEED_DB: djangoDb } })
  const old = JSON.parse(made.stdout) as { ids: Record<string, number>, grace: string, zoe: string, blacklisted: string, rotated: string, sleeper: string }

  const environment = await testEnvironment(t, { LEGACY_JWT_SECRET: 'bench-only-not-secret', LEGACY_JWT_UNTIL: new Date(Date.now() + 7 * 86400_000).toISOString(), REFRESH_REUSE_GRACE: '0' })
  let report = ''
  const code = await importDjango(['--from', `${serverUrl}/${djangoDb}`], environment, { write: (text: string) => { report += text } }, { write: () => {} })
  t.equal(code, 0, 'every row imported')
  t.match(report, new RegExp(`${old.ids.ada}.*ada#${old.ids.ada}`), 'the name that collides with another after case folding is renamed, and the report says so')
  t.match(report, new RegExp(`${old.ids.nopass}.*unusable`), 'and which user has no usable password')

  const app = await build(t, environment)
  const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/api/token/', payload: { username, password } })
  for (const [name, password] of [['grace', 'compiler for COBOL 1959'], ['Zoë', 'a unicode passphrase']] as const) {
    const answer = await login(name, password)
    t.equal(answer.statusCode, 200, `${name} logs in with the password Django hashed`)
    t.equal(claimsOf(answer.json().access).user_id, old.ids[name], 'with the same id in the claims')
  }
  const [grace] = await app.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, old.ids.grace!))
  t.match(grace!.passwordHash, /^\$argon2id\$/, 'the Django hash is gone after the first login')
  t.equal((await login('sleeper', 'a dormant passphrase')).json().code, 'account_disabled', 'an inactive user is disabled here')
  t.equal((await login('nopass', '')).statusCode, 400)
  t.equal((await login('nopass', 'any password at all')).json().code, 'invalid_credentials', 'an unusable password matches nothing')

  const refresh = (token: string) => app.inject({ method: 'POST', url: '/api/token/refresh/', payload: { refresh: token } })
  const exchanged = await refresh(old.grace)
  t.equal(exchanged.statusCode, 200, 'a live SimpleJWT refresh token becomes a session here')
  t.equal(claimsOf(exchanged.json().access).user_id, old.ids.grace)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(exchanged.json().access) })).json().username, 'grace')
  t.equal((await refresh(old.grace)).json().code, 'token_reused', 'once: the second time, past the grace window, is reuse')
  t.equal((await refresh(old.rotated)).statusCode, 200, 'the token SimpleJWT gave in exchange for the rotated one')
  t.equal((await refresh(old.blacklisted)).json().code, 'token_revoked', 'the token SimpleJWT blacklisted')
  t.equal((await refresh(old.zoe)).statusCode, 200)
  t.equal((await refresh(old.sleeper)).json().code, 'token_revoked', 'a disabled user\'s')
})
