import { hash } from '@node-rs/argon2'
import Fastify from 'fastify'
import t from 'tap'
import password, { argon2Parameters, createPasswordHasher, hashingSlots } from '../../plugins/password.js'

// Made by test/src/make-django-hashes.py (Python's hashlib, as Django's PBKDF2PasswordHasher and
// BCryptSHA256PasswordHasher encode): the passwords are 'correct horse', then 'lètmein'.
const djangoPbkdf2 = 'pbkdf2_sha256$1000$gNzZWOw1dgkNQB5aYFuQ73$mXpalS3nVkUYXppGvh5hyU9lPQ60oaXx+bqBgVjMs98='
const djangoBcryptSha256 = 'bcrypt_sha256$$2b$04$I2RVgxWKhPlVqp6GEt6bTOkIn3Yod3i67xLUoTA.lIOW5zFBzI3xC'
const djangoPbkdf2At720000 = 'pbkdf2_sha256$720000$SdpVCFeY9IGYQss7bLjjnB$SFIq9ugOceYQ5Fdi6GBAOA/C58ZKZtH2UZaaycRFrX4='

t.test('password plugin', async (t) => {
  const app = Fastify()
  await app.register(password, { concurrency: 2, queue: 8 })
  await app.ready()
  t.teardown(() => app.close())

  t.test('hashes with argon2id at the OWASP parameters, carried in the hash', async (t) => {
    t.same(argon2Parameters, { memoryCost: 19456, timeCost: 2, parallelism: 1 })
    const stored = await app.passwordHasher.hash('correct horse battery')
    t.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[^$]+\$[^$]+$/)
    t.not(await app.passwordHasher.hash('correct horse battery'), stored, 'salted')
    t.equal(await app.passwordHasher.verify(stored, 'correct horse battery'), true)
    t.equal(await app.passwordHasher.verify(stored, 'correct horse batter'), false)
    t.equal(await app.passwordHasher.verify('not a hash', 'anything'), false, 'an unreadable hash never verifies')
    t.equal(await app.passwordHasher.verify('$argon2id$v=19$broken', 'anything'), false, 'nor an unreadable argon2 one')
  })

  t.test('normalises to NFC before hashing', async (t) => {
    const stored = await app.passwordHasher.hash('ame\u0301lie-secret')
    t.equal(await app.passwordHasher.verify(stored, 'am\u00e9lie-secret'), true)
  })

  t.test('needsRehash flags weaker or other algorithms', async (t) => {
    t.equal(app.passwordHasher.needsRehash(await app.passwordHasher.hash('x-password')), false)
    t.equal(app.passwordHasher.needsRehash(await hash('x-password', { memoryCost: 4096, timeCost: 2, parallelism: 1 })), true, 'less memory')
    t.equal(app.passwordHasher.needsRehash(await hash('x-password', { memoryCost: 19456, timeCost: 1, parallelism: 1 })), true, 'fewer passes')
    t.equal(app.passwordHasher.needsRehash(await hash('x-password', { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 1 as never })), true, 'argon2i')
    t.equal(app.passwordHasher.needsRehash('$2b$12$abcdefghijklmnopqrstuv'), true, 'bcrypt')
  })

  t.test('verifies the hashes of users moved in from Django, which all need a re-hash', async (t) => {
    for (const stored of [djangoPbkdf2, djangoBcryptSha256]) {
      t.equal(await app.passwordHasher.verify(stored, 'correct horse'), true, stored)
      t.equal(await app.passwordHasher.verify(stored, 'correct horsf'), false, stored)
      t.equal(app.passwordHasher.needsRehash(stored), true, stored)
    }
    t.equal(await app.passwordHasher.verify(djangoPbkdf2At720000, 'lètmein'), true, 'Django 5.0\'s 720,000 iterations')
    t.equal(await app.passwordHasher.verify(djangoPbkdf2At720000, 'le\u0300tmein'), false, 'as typed, as Django: not normalised')
  })

  t.test('a hash that can never match costs an argon2id verify, like an unknown user', async (t) => {
    for (const stored of ['!unusable', 'md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3', '']) {
      const started = performance.now()
      t.equal(await app.passwordHasher.verify(stored, 'lètmein'), false, stored)
      const spent = performance.now() - started
      t.ok(spent > 1, `${JSON.stringify(stored)}: ${spent.toFixed(1)} ms, not an instant answer`)
    }
  })

  t.test('the dummy verify does the work of a real one', async (t) => {
    const stored = await app.passwordHasher.hash('some password')
    const time = async (work: () => Promise<unknown>) => {
      const started = performance.now()
      for (let i = 0; i < 3; i++) await work()
      return performance.now() - started
    }
    const real = await time(() => app.passwordHasher.verify(stored, 'wrong password'))
    const dummy = await time(() => app.passwordHasher.verifyDummy('wrong password'))
    t.ok(dummy > real / 3, `dummy ${dummy.toFixed(0)} ms, real ${real.toFixed(0)} ms`)
  })
})

t.test('hashing slots: at most concurrency at once, a short queue, then 503 with Retry-After', async (t) => {
  const slots = hashingSlots({ concurrency: 2, queue: 1 })
  const releases: Array<() => void> = []
  const started: number[] = []
  const job = (id: number) => slots.run(async () => {
    started.push(id)
    await new Promise<void>((resolve) => releases.push(resolve))
    return id
  })
  const first = job(1)
  const second = job(2)
  const third = job(3)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [1, 2], 'two run, the third waits')
  t.same(slots.load(), { inFlight: 2, queued: 1 })
  await t.rejects(job(4), { statusCode: 503, code: 'service_unavailable', headers: { 'retry-after': '1' } }, 'the queue is full')

  releases.shift()!()
  t.equal(await first, 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [1, 2, 3], 'the waiting one takes the freed slot')
  t.same(slots.load(), { inFlight: 2, queued: 0 })
  releases.shift()!()
  releases.shift()!()
  t.same([await second, await third], [2, 3])
  t.same(slots.load(), { inFlight: 0, queued: 0 })
  await t.rejects(slots.run(async () => { throw new Error('boom') }), /boom/)
  t.same(slots.load(), { inFlight: 0, queued: 0 }, 'a failed job frees its slot')
})

t.test('a Django verify takes a hashing slot like argon2: with none free and no queue, 503', async (t) => {
  const hasher = await createPasswordHasher({ concurrency: 1, queue: 0 })
  const first = hasher.verify(djangoPbkdf2At720000, 'lètmein')
  t.same(hasher.load(), { inFlight: 1, queued: 0 }, 'the PBKDF2 holds the only slot')
  await t.rejects(hasher.verify(djangoPbkdf2, 'correct horse'), { statusCode: 503, code: 'service_unavailable', headers: { 'retry-after': '1' } }, 'a second Django verify')
  await t.rejects(hasher.verify(await hash('x-password', argon2Parameters), 'x-password'), { statusCode: 503, code: 'service_unavailable' }, 'and an argon2 one')
  t.equal(await first, true)
  t.same(hasher.load(), { inFlight: 0, queued: 0 })
  t.equal(await hasher.verify(djangoPbkdf2, 'correct horse'), true, 'the slot is free again')
})

t.test('hashing slots: a waiting costly job goes after every waiting ordinary one, within the same queue limit', async (t) => {
  const slots = hashingSlots({ concurrency: 1, queue: 3 })
  const releases: Array<() => void> = []
  const started: string[] = []
  const job = (id: string, costly: boolean) => slots.run(async () => {
    started.push(id)
    await new Promise<void>((resolve) => releases.push(resolve))
    return id
  }, { costly })
  const jobs = [job('running', true), job('costly', true), job('argon2 a', false), job('argon2 b', false)]
  await new Promise((resolve) => setImmediate(resolve))
  t.same(slots.load(), { inFlight: 1, queued: 3 })
  await t.rejects(job('one more', false), { statusCode: 503, code: 'service_unavailable' }, 'one queue limit for both')
  for (let i = 0; i < 4; i++) {
    releases.shift()!()
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(started, ['running', 'argon2 a', 'argon2 b', 'costly'])
  t.same(await Promise.all(jobs), ['running', 'costly', 'argon2 a', 'argon2 b'])
  t.same(slots.load(), { inFlight: 0, queued: 0 })
})
