import { hash } from '@node-rs/argon2'
import Fastify from 'fastify'
import t from 'tap'
import password, { argon2Parameters } from '../../plugins/password.js'

t.test('password plugin', async (t) => {
  const app = Fastify()
  await app.register(password)
  await app.ready()
  t.teardown(() => app.close())

  t.test('hashes with argon2id at the OWASP parameters, carried in the hash', async (t) => {
    t.same(argon2Parameters, { memoryCost: 19456, timeCost: 2, parallelism: 1 })
    const stored = await app.password.hash('correct horse battery')
    t.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[^$]+\$[^$]+$/)
    t.not(await app.password.hash('correct horse battery'), stored, 'salted')
    t.equal(await app.password.verify(stored, 'correct horse battery'), true)
    t.equal(await app.password.verify(stored, 'correct horse batter'), false)
    t.equal(await app.password.verify('not a hash', 'anything'), false, 'an unreadable hash never verifies')
  })

  t.test('normalises to NFC before hashing', async (t) => {
    const stored = await app.password.hash('ame\u0301lie-secret')
    t.equal(await app.password.verify(stored, 'am\u00e9lie-secret'), true)
  })

  t.test('needsRehash flags weaker or other algorithms', async (t) => {
    t.equal(app.password.needsRehash(await app.password.hash('x-password')), false)
    t.equal(app.password.needsRehash(await hash('x-password', { memoryCost: 4096, timeCost: 2, parallelism: 1 })), true, 'less memory')
    t.equal(app.password.needsRehash(await hash('x-password', { memoryCost: 19456, timeCost: 1, parallelism: 1 })), true, 'fewer passes')
    t.equal(app.password.needsRehash(await hash('x-password', { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 1 as never })), true, 'argon2i')
    t.equal(app.password.needsRehash('$2b$12$abcdefghijklmnopqrstuv'), true, 'bcrypt')
  })

  t.test('the dummy verify does the work of a real one', async (t) => {
    const stored = await app.password.hash('some password')
    const time = async (work: () => Promise<unknown>) => {
      const started = performance.now()
      for (let i = 0; i < 3; i++) await work()
      return performance.now() - started
    }
    const real = await time(() => app.password.verify(stored, 'wrong password'))
    const dummy = await time(() => app.password.verifyDummy('wrong password'))
    t.ok(dummy > real / 3, `dummy ${dummy.toFixed(0)} ms, real ${real.toFixed(0)} ms`)
  })
})
