import { hash } from '@node-rs/argon2'
import Fastify from 'fastify'
import t from 'tap'
import password, { argon2Parameters, hashingSlots } from '../../plugins/password.js'

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
