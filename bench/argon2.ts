// Ceiling 2: argon2id at the service's own parameters, hashes or verifies with a fixed number in flight.
import { randomBytes } from 'node:crypto'
import { createPasswordHasher } from '../plugins/password.js'
import { loop, type LoopOptions } from './loop.js'

const { kind, ...options } = JSON.parse(process.argv[2]!) as LoopOptions & { kind: 'hash' | 'verify' }
const hasher = await createPasswordHasher({ concurrency: options.inFlight, queue: 0 })
const password = 'correct horse battery staple'
const stored = await hasher.hash(password)
const result = kind === 'hash'
  ? await loop(() => hasher.hash(`${password} ${randomBytes(8).toString('hex')}`), options)
  : await loop(async () => {
    // A verify that answered false would be counted as a success: count it as an error instead.
    /* c8 ignore next: the stored hash is of this very password, so only a broken argon2 answers false */
    if (!await hasher.verify(stored, password)) throw new Error('verify failed')
  }, options)
process.send!(result, () => process.disconnect())
