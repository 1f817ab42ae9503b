import t, { type Test } from 'tap'
import { classifyPasswordHash, djangoHashLimits, isVerifiableDjangoHash, verifyDjangoHash } from '../../src/django-hashes.js'

/*
 * Every hash below was made independently of the code under test:
 * - "Django's vector": a literal of Django's own test suite (tests/auth_tests/test_hashers.py), with its password;
 * - "Python": printed by test/src/make-django-hashes.py, which reproduces Django's encoders with Python's standard
 *   library (hashlib.pbkdf2_hmac, hashlib.scrypt, base64), and calls argon2-cffi and bcrypt (Debian's
 *   python3-argon2 and python3-bcrypt, the libraries Django's own hashers call). The script first checks that it
 *   reproduces Django's vectors exactly.
 */
const fixtures = {
  // Django's vectors.
  pbkdf2Django: 'pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=', // lètmein
  pbkdf2Sha1Django: 'pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I=', // lètmein
  scryptDjango: 'scrypt$16384$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw==', // lètmein
  argon2iNoVersionDjango: 'argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg', // secret
  argon2iDjango: 'argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q', // secret
  argon2idDjango: 'argon2$argon2id$v=19$m=102400,t=2,p=8$Y041dExhNkljRUUy$TMa6A8fPJhCAUXRhJXCXdw', // secret
  md5Django: 'md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3', // lètmein
  sha1Django: 'sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8', // lètmein
  unsaltedMd5Django: '88a434c88cca4e900f7874cd98123f43', // lètmein
  unsaltedSha1Django: 'sha1$$6d138ca3ae545631b3abd71a4f076ce759c5700b', // lètmein
  cryptDjango: 'crypt$$ab1Hv2Lg7ltQo', // lètmei
  // Python.
  pbkdf2At720000: 'pbkdf2_sha256$720000$SdpVCFeY9IGYQss7bLjjnB$SFIq9ugOceYQ5Fdi6GBAOA/C58ZKZtH2UZaaycRFrX4=', // lètmein
  pbkdf2: 'pbkdf2_sha256$1000$gNzZWOw1dgkNQB5aYFuQ73$mXpalS3nVkUYXppGvh5hyU9lPQ60oaXx+bqBgVjMs98=', // correct horse
  pbkdf2Empty: 'pbkdf2_sha256$1000$Ro7U4JAAx2kbvoa6m7MvlC$rzYMVBdq8+136XFHvE7jolxljZj2uSEDCn1oaVDGbYI=', // the empty password
  pbkdf2Sha1: 'pbkdf2_sha1$1000$BgoiNk63rwgx4DbL1YkXUR$WsGMhT7NupAG9Fken2IoJLTE+lA=', // correct horse
  pbkdf2OverCap: 'pbkdf2_sha256$2000001$seasalt$XOFbYa/Pn0eVgpB80wE2pY4KtoyfY7/BkX1IE+sZ/PM=', // x
  scrypt: 'scrypt$1024$WBhOmJq7BNmMiju9gIdXt4$8$1$q6ENk2/jDSwl2Or25lMZi9EQujPJ/LrPM9XOwn47TrGBYTL+X6PVMmL+1xilSPobtBqX3oChiuMKKZqTIxVTAA==', // correct horse
  argon2idDefaults: 'argon2$argon2id$v=19$m=102400,t=2,p=8$M1ZQUW54bm9hMFJTMkhjdWVyRWJ5Qw$jxjc4pmyASCaltyN4g3CtQ', // lètmein
  argon2id: 'argon2$argon2id$v=19$m=1024,t=1,p=2$ME85U1dJTndCWmNwYVN3NkxRVkhCNw$3P/rOvHL+uR/h09IWGyJ0w', // correct horse
  argon2i: 'argon2$argon2i$v=19$m=1024,t=1,p=2$YkExRnozaHpnQVhEOFdHN0MzWGc2cw$vIEw+q6G+9qS0CVnoSAe4w', // correct horse
  bcryptSha256At12: 'bcrypt_sha256$$2b$12$JbxJME/x613TNudAIFlt3.6yNb.QBFgoAP6EJzJwHKoKz8luSVrIe', // lètmein
  bcryptSha256: 'bcrypt_sha256$$2b$04$I2RVgxWKhPlVqp6GEt6bTOkIn3Yod3i67xLUoTA.lIOW5zFBzI3xC', // correct horse
  bcryptSha256Long: 'bcrypt_sha256$$2b$04$I070NQqMnQfVxKG8razLo.tsHXpmOYDOfCqq/CPVV9UYskAtvSu0C', // long
  bcrypt: 'bcrypt$$2b$04$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4CosowI0/xbK', // correct horse
  bcryptLong: 'bcrypt$$2b$04$hLCXXyPEFHCT0iqTUT/mN.5uJ5VQGLZqqLiN/Da.69r0r8yIluFLu' // long
}
const long = 'x'.repeat(72) + 'ignored by bcrypt'

/** The same hash with one character of its last field changed. */
const tampered = (stored: string) => {
  const last = stored.replace(/=+$/, '').length - 1
  return stored.slice(0, last) + (stored[last] === 'A' ? 'B' : 'A') + stored.slice(last + 1)
}

const matches = async (t: Test, stored: string, password: string, wrong = `${password}z`) => {
  t.equal(await verifyDjangoHash(stored, password), true, `${stored.slice(0, 24)}…: the right password`)
  t.equal(await verifyDjangoHash(stored, wrong), false, `${stored.slice(0, 24)}…: a wrong password`)
  t.equal(await verifyDjangoHash(tampered(stored), password), false, `${stored.slice(0, 24)}…: a tampered hash`)
}

t.test('pbkdf2_sha256 and pbkdf2_sha1', async (t) => {
  await matches(t, fixtures.pbkdf2Django, 'lètmein')
  await matches(t, fixtures.pbkdf2Sha1Django, 'lètmein')
  await matches(t, fixtures.pbkdf2, 'correct horse')
  await matches(t, fixtures.pbkdf2Sha1, 'correct horse')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2At720000, 'lètmein'), true, 'Django 5.0\'s 720,000 iterations')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2Empty, ''), true, 'the empty password')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2Empty, ' '), false)
  t.equal(await verifyDjangoHash(fixtures.pbkdf2Django, 'le\u0300tmein'), false, 'as typed, as Django: a decomposed è is another password')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2.replace('$1000$', '$1001$'), 'correct horse'), false, 'another count')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2.replace('$gNz', '$gNy'), 'correct horse'), false, 'another salt')
  t.equal(await verifyDjangoHash(fixtures.pbkdf2.replace('pbkdf2_sha256', 'pbkdf2_sha1'), 'correct horse'), false, 'another digest')
})

t.test('PBKDF2 over the iteration cap is unusable, and never computed', async (t) => {
  t.equal(djangoHashLimits.pbkdf2Iterations, 2_000_000)
  t.same(classifyPasswordHash(fixtures.pbkdf2OverCap), { kind: 'unusable', reason: 'pbkdf2_sha256 with 2000001 iterations, over the cap of 2000000' })
  const started = performance.now()
  t.equal(await verifyDjangoHash(fixtures.pbkdf2OverCap, 'x'), false)
  t.ok(performance.now() - started < 200, 'refused before any hashing')
  t.equal(classifyPasswordHash('pbkdf2_sha256$2000000$seasalt$XOFbYa/Pn0eVgpB80wE2pY4KtoyfY7/BkX1IE+sZ/PM=').kind, 'pbkdf2_sha256', 'the cap itself is allowed')
})

t.test('scrypt', async (t) => {
  await matches(t, fixtures.scryptDjango, 'lètmein')
  await matches(t, fixtures.scrypt, 'correct horse')
  t.equal(await verifyDjangoHash(fixtures.scrypt.replace('$8$1$', '$8$2$'), 'correct horse'), false, 'another parallelism')
  t.same(classifyPasswordHash('scrypt$1048576$salt$8$1$aGFzaA=='), { kind: 'unusable', reason: 'scrypt with n=1048576, r=8, p=1, over the cap of 128 MiB or p=16' })
  t.equal(classifyPasswordHash('scrypt$16384$salt$8$17$aGFzaA==').kind, 'unusable', 'p over the cap')
  t.equal(classifyPasswordHash('scrypt$131072$salt$8$16$aGFzaA==').kind, 'scrypt', 'the caps themselves are allowed')
})

t.test('argon2, as Django stores it', async (t) => {
  await matches(t, fixtures.argon2iNoVersionDjango, 'secret')
  await matches(t, fixtures.argon2iDjango, 'secret')
  await matches(t, fixtures.argon2idDjango, 'secret')
  await matches(t, fixtures.argon2id, 'correct horse')
  await matches(t, fixtures.argon2i, 'correct horse')
  t.equal(await verifyDjangoHash(fixtures.argon2idDefaults, 'lètmein'), true, 'Django\'s default parameters')
  t.equal(await verifyDjangoHash(fixtures.argon2id.replace('argon2id', 'argon2i'), 'correct horse'), false, 'another variant')
  t.same(classifyPasswordHash('argon2$argon2id$v=19$m=1048577,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q'),
    { kind: 'unusable', reason: 'argon2 with m=1048577, t=1, p=1, over the cap of 1048576 KiB·passes or p=16' })
  t.equal(classifyPasswordHash('argon2$argon2id$v=19$m=8,t=1,p=17$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q').kind, 'unusable', 'p over the cap')
  t.equal(classifyPasswordHash('argon2$argon2id$v=19$m=262144,t=4,p=16$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q').kind, 'argon2', 'the caps themselves are allowed')
  t.equal(await verifyDjangoHash('argon2$argon2id$v=19$m=8,t=1,p=1$c2E$YC9+jJCrQhs5R6db7LlN8Q', 'secret'), false, 'a salt the library refuses')
})

t.test('bcrypt_sha256 and bcrypt', async (t) => {
  await matches(t, fixtures.bcryptSha256, 'correct horse')
  await matches(t, fixtures.bcrypt, 'correct horse')
  t.equal(await verifyDjangoHash(fixtures.bcryptSha256At12, 'lètmein'), true, 'Django\'s default cost')
  t.equal(await verifyDjangoHash(fixtures.bcryptSha256Long, long), true, 'bcrypt_sha256 keeps past 72 bytes')
  t.equal(await verifyDjangoHash(fixtures.bcryptSha256Long, long.slice(0, 72)), false, 'so a prefix is another password')
  t.equal(await verifyDjangoHash(fixtures.bcryptLong, long), true)
  t.equal(await verifyDjangoHash(fixtures.bcryptLong, `${long.slice(0, 72)}anything`), true, 'bcrypt cuts at 72 bytes, as in Django')
  t.equal(await verifyDjangoHash(fixtures.bcrypt, 'correct horse\0'), false, 'a NUL byte, which Django\'s bcrypt refuses')
  t.equal(await verifyDjangoHash(fixtures.bcrypt.replace('$2b$', '$2y$'), 'correct horse'), true, 'the $2y$ and $2a$ spellings are the same algorithm')
  t.equal(await verifyDjangoHash(fixtures.bcryptSha256.replace('bcrypt_sha256', 'bcrypt'), 'correct horse'), false, 'one is not the other')
  t.same(classifyPasswordHash(fixtures.bcrypt.replace('$04$', '$15$')), { kind: 'unusable', reason: 'bcrypt with cost 15, over the cap of 14' })
  t.equal(classifyPasswordHash(fixtures.bcrypt.replace('$04$', '$14$')).kind, 'bcrypt', 'the cap itself is allowed')
})

t.test('malformed hashes of a supported algorithm are unusable', async (t) => {
  const cases = [
    ['pbkdf2_sha256$1000$salt', 'pbkdf2_sha256'],
    ['pbkdf2_sha256$1000$salt$aGFzaA==$more', 'pbkdf2_sha256'],
    ['pbkdf2_sha256$0$salt$aGFzaA==', 'pbkdf2_sha256'],
    ['pbkdf2_sha256$01000$salt$aGFzaA==', 'pbkdf2_sha256'],
    ['pbkdf2_sha1$many$salt$aGFzaA==', 'pbkdf2_sha1'],
    ['pbkdf2_sha256$1000$$aGFzaA==', 'pbkdf2_sha256'],
    ['pbkdf2_sha256$1000$salt$not base64!', 'pbkdf2_sha256'],
    ['pbkdf2_sha256$1000$salt$', 'pbkdf2_sha256'],
    ['scrypt$16384$salt$8$1', 'scrypt'],
    ['scrypt$16384$$8$1$aGFzaA==', 'scrypt'],
    ['scrypt$16384$salt$0$1$aGFzaA==', 'scrypt'],
    ['scrypt$16384$salt$8$x$aGFzaA==', 'scrypt'],
    ['scrypt$16384$salt$8$1$***', 'scrypt'],
    ['scrypt$x$salt$8$1$aGFzaA==', 'scrypt'],
    ['scrypt$1000$salt$8$1$aGFzaA==', 'scrypt'],
    ['scrypt$1$salt$8$1$aGFzaA==', 'scrypt'],
    ['scrypt$2147483648$salt$1$1$aGFzaA==', 'scrypt'],
    ['argon2', 'argon2'],
    ['argon2$argon2d$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q', 'argon2'],
    ['argon2$argon2id$v=18$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q', 'argon2'],
    ['argon2$argon2id$v=19$m=8,t=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q', 'argon2'],
    ['bcrypt_sha256$2b$04$I2RVgxWKhPlVqp6GEt6bTOkIn3Yod3i67xLUoTA.lIOW5zFBzI3xC', 'bcrypt_sha256'],
    ['bcrypt$$2b$03$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4CosowI0/xbK', 'bcrypt'],
    ['bcrypt$$2b$32$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4CosowI0/xbK', 'bcrypt'],
    ['bcrypt$$2c$04$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4CosowI0/xbK', 'bcrypt'],
    ['bcrypt$$2b$04$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4Cos', 'bcrypt']
  ] as const
  for (const [stored, algorithm] of cases) {
    t.same(classifyPasswordHash(stored), { kind: 'unusable', reason: `malformed ${algorithm} hash` }, stored)
    t.equal(isVerifiableDjangoHash(stored), false, stored)
    t.equal(await verifyDjangoHash(stored, 'correct horse'), false, stored)
  }
})

t.test('unusable passwords never match', async (t) => {
  for (const stored of ['!', '!Vm0wd2QyUXlVWGxWV0d4V1YwZDRWMVl3WkRSV01WbDNXa1JTVjAxV2JETlhhMUpUVmpBeFYy', '!correct horse']) {
    t.same(classifyPasswordHash(stored), { kind: 'unusable', reason: 'an unusable password (Django\'s set_unusable_password)' })
    t.equal(await verifyDjangoHash(stored, stored), false)
    t.equal(await verifyDjangoHash(stored, stored.slice(1)), false)
    t.equal(await verifyDjangoHash(stored, ''), false)
  }
  t.same(classifyPasswordHash(''), { kind: 'unusable', reason: 'no password' })
  t.equal(await verifyDjangoHash('', ''), false)
})

t.test('unsalted and fast hashes are refused, even with the right password', async (t) => {
  const cases = [
    [fixtures.md5Django, 'lètmein', 'md5: a fast hash, refused'],
    [fixtures.sha1Django, 'lètmein', 'sha1: a fast hash, refused'],
    [fixtures.unsaltedMd5Django, 'lètmein', 'unsalted_md5: a fast hash, refused'],
    [`md5$$${fixtures.unsaltedMd5Django}`, 'lètmein', 'md5: a fast hash, refused'],
    [`unsalted_md5$${fixtures.unsaltedMd5Django}`, 'lètmein', 'unsalted_md5: a fast hash, refused'],
    [fixtures.unsaltedSha1Django, 'lètmein', 'sha1: a fast hash, refused'],
    ['unsalted_sha1$$6d138ca3ae545631b3abd71a4f076ce759c5700b', 'lètmein', 'unsalted_sha1: a fast hash, refused'],
    [fixtures.cryptDjango, 'lètmei', 'crypt: a fast hash, refused'],
    ['lolcat$salt$hash', 'lètmein', 'an unknown hash format'],
    ['$2b$04$7VgRBaz14z7Ta60jW5UwiOzfmnexI0F730kCxIr6I4CosowI0/xbK', 'correct horse', 'an unknown hash format'],
    ['$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q', 'secret', 'an unknown hash format']
  ] as const
  for (const [stored, password, reason] of cases) {
    t.same(classifyPasswordHash(stored), { kind: 'unsupported', reason }, stored)
    t.equal(await verifyDjangoHash(stored, password), false, stored)
  }
})

t.test('classification', async (t) => {
  t.same(classifyPasswordHash('$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA'), { kind: 'argon2id' }, 'ours')
  const kinds = {
    pbkdf2_sha256: fixtures.pbkdf2,
    pbkdf2_sha1: fixtures.pbkdf2Sha1,
    scrypt: fixtures.scrypt,
    argon2: fixtures.argon2iNoVersionDjango,
    bcrypt_sha256: fixtures.bcryptSha256,
    bcrypt: fixtures.bcrypt
  }
  for (const [kind, stored] of Object.entries(kinds)) {
    t.same(classifyPasswordHash(stored), { kind }, kind)
    t.equal(isVerifiableDjangoHash(stored), true, kind)
  }
  t.equal(isVerifiableDjangoHash('$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA'), false, 'ours is not Django\'s')
})
