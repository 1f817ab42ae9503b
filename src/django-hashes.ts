import { createHash, pbkdf2, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto'
import { promisify } from 'node:util'
import { verify as argon2Verify } from '@node-rs/argon2'
import { verify as bcryptVerify } from '@node-rs/bcrypt'

/**
 * Password hashes as Django stores them in `auth_user.password` (django/contrib/auth/hashers.py, Django 3.2 to 5),
 * verified the way Django's own hashers do, so that users moved in from a Django service log in with the
 * password they had. Every computation here runs on libuv's thread pool (or in the native bindings' own async
 * tasks), never on the event loop; plugins/password.ts runs each through the bounded hashing slots.
 */

/** The formats verified, under Django's own algorithm names. */
export type DjangoAlgorithm = 'pbkdf2_sha256' | 'pbkdf2_sha1' | 'argon2' | 'bcrypt_sha256' | 'bcrypt' | 'scrypt'

/**
 * What a stored hash is: `argon2id` is this service's own; a Django algorithm is verified as Django would;
 * `unusable` never matches (Django's `!…` unusable password, a hash that cannot be read, or one too costly to
 * verify: the user resets by email); `unsupported` is refused (unsalted or fast hashes, unknown formats).
 */
export type StoredHashKind = 'argon2id' | DjangoAlgorithm | 'unusable' | 'unsupported'

export interface StoredHashClass {
  kind: StoredHashKind
  /** Why an `unusable` or `unsupported` hash is refused, for an importer's report. */
  reason?: string
}

/**
 * The most a stored hash may cost before it is refused as unusable: a corrupt or hostile row must not be able to
 * hold a hashing slot for minutes. Each is a few times Django's own default.
 */
export const djangoHashLimits = {
  /** Django 5.0 uses 720,000 (about 400 ms of CPU here), 5.2 uses 1,000,000. */
  pbkdf2Iterations: 2_000_000,
  /** scrypt's memory, 128·n·r bytes: Django's default (n = 2^14, r = 8) takes 16 MiB. */
  scryptMemory: 128 * 1024 * 1024,
  scryptParallelism: 16,
  /** argon2's memory in KiB times its passes: Django's default (102,400 KiB, t = 2) is a fifth of it. */
  argon2Work: 1024 * 1024,
  argon2Parallelism: 16,
  /** bcrypt's log2 cost: Django's default is 12 (about 250 ms), each step doubles it. */
  bcryptCost: 14
}

const pbkdf2Async = promisify(pbkdf2)
const scryptAsync = promisify(scrypt) as (password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions) => Promise<Buffer>

interface Readable {
  kind: DjangoAlgorithm
  /** Resolves true only for the right password; rejects when a library cannot read the hash. */
  check: (password: string) => Promise<boolean>
}

interface Refused {
  kind: 'unusable' | 'unsupported'
  reason: string
}

const unusable = (reason: string): Refused => ({ kind: 'unusable', reason })
const malformed = (algorithm: DjangoAlgorithm): Refused => unusable(`malformed ${algorithm} hash`)

/** Django's hashers written in ASCII, compared in constant time once the lengths match (Django's constant_time_compare). */
const sameText = (a: string, b: string) => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

const positive = /^[1-9][0-9]{0,9}$/
const base64 = /^[A-Za-z0-9+/]+={0,2}$/

/** `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, the hash as long as the digest (Django's default hasher). */
function readPbkdf2 (algorithm: 'pbkdf2_sha256' | 'pbkdf2_sha1', fields: string[]): Readable | Refused {
  const [iterations, salt, encoded] = fields
  if (fields.length !== 3 || !positive.test(iterations!) || salt === '' || !base64.test(encoded!)) return malformed(algorithm)
  const rounds = Number(iterations)
  if (rounds > djangoHashLimits.pbkdf2Iterations) {
    return unusable(`${algorithm} with ${rounds} iterations, over the cap of ${djangoHashLimits.pbkdf2Iterations}`)
  }
  const digest = algorithm === 'pbkdf2_sha256' ? 'sha256' : 'sha1'
  const length = digest === 'sha256' ? 32 : 20
  return {
    kind: algorithm,
    // As Django's verify: encode the password again with the stored salt and count, compare the encodings.
    check: async (password) => sameText((await pbkdf2Async(password, salt!, rounds, length, digest)).toString('base64'), encoded!)
  }
}

/** `scrypt$<n>$<salt>$<r>$<p>$<base64 hash of 64 bytes>` (Django 4.0 and later). */
function readScrypt (fields: string[]): Readable | Refused {
  const [n, salt, r, p, encoded] = fields
  if (fields.length !== 5 || !positive.test(n!) || salt === '' || !positive.test(r!) || !positive.test(p!) || !base64.test(encoded!)) {
    return malformed('scrypt')
  }
  const cost = Number(n)
  const blockSize = Number(r)
  const parallelism = Number(p)
  // scrypt's n is a power of two above 1: a bit trick that stays exact up to 2^31.
  if (cost < 2 || cost > 2 ** 30 || (cost & (cost - 1)) !== 0) return malformed('scrypt')
  const memory = 128 * cost * blockSize
  if (memory > djangoHashLimits.scryptMemory || parallelism > djangoHashLimits.scryptParallelism) {
    return unusable(`scrypt with n=${cost}, r=${blockSize}, p=${parallelism}, over the cap of ${djangoHashLimits.scryptMemory / 2 ** 20} MiB or p=${djangoHashLimits.scryptParallelism}`)
  }
  // OpenSSL needs 128·r·(n + p + 2) bytes; Node's default maxmem (32 MiB) is below what some Django settings take.
  const options = { N: cost, r: blockSize, p: parallelism, maxmem: 128 * blockSize * (cost + parallelism + 2) + 2 ** 20 }
  return {
    kind: 'scrypt',
    check: async (password) => sameText((await scryptAsync(password, salt!, 64, options)).toString('base64'), encoded!)
  }
}

const argon2Phc = /^\$argon2(?:id|i)\$(?:v=(?:16|19)\$)?m=([0-9]{1,10}),t=([0-9]{1,10}),p=([0-9]{1,3})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/

/** `argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: Django keeps argon2-cffi's PHC string after its `argon2` prefix. */
function readArgon2 (phc: string): Readable | Refused {
  const parameters = argon2Phc.exec(phc)
  if (parameters === null) return malformed('argon2')
  const [memory, passes, lanes] = parameters.slice(1).map(Number) as [number, number, number]
  if (memory * passes > djangoHashLimits.argon2Work || lanes > djangoHashLimits.argon2Parallelism) {
    return unusable(`argon2 with m=${memory}, t=${passes}, p=${lanes}, over the cap of ${djangoHashLimits.argon2Work} KiB·passes or p=${djangoHashLimits.argon2Parallelism}`)
  }
  // The binding compares in constant time (the argon2 crate's Output is compared with subtle's ct_eq).
  return { kind: 'argon2', check: (password) => argon2Verify(phc, password) }
}

const bcryptModular = /^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}$/

/**
 * `bcrypt_sha256$$2b$12$…` is bcrypt of the hex SHA-256 of the password (so nothing is lost past 72 bytes);
 * `bcrypt$$2b$12$…` is bcrypt of the password itself, which bcrypt cuts at 72 bytes.
 */
function readBcrypt (algorithm: 'bcrypt_sha256' | 'bcrypt', modular: string): Readable | Refused {
  const cost = bcryptModular.exec(modular)?.[1]
  if (cost === undefined || Number(cost) < 4 || Number(cost) > 31) return malformed(algorithm)
  if (Number(cost) > djangoHashLimits.bcryptCost) {
    return unusable(`${algorithm} with cost ${Number(cost)}, over the cap of ${djangoHashLimits.bcryptCost}`)
  }
  // The binding compares in constant time (the bcrypt crate compares with subtle's ct_eq).
  if (algorithm === 'bcrypt_sha256') {
    return { kind: algorithm, check: (password) => bcryptVerify(createHash('sha256').update(password).digest('hex'), modular) }
  }
  return {
    kind: algorithm,
    // Python's bcrypt refuses a NUL byte, so no Django hash holds one; the Rust one would read past it.
    check: async (password) => !password.includes('\0') && await bcryptVerify(Buffer.from(password).subarray(0, 72), modular)
  }
}

/** Django's hashers that this service refuses: unsalted, or a single fast digest, or DES crypt. */
const refusedAlgorithms = new Set(['unsalted_md5', 'unsalted_sha1', 'md5', 'sha1', 'crypt'])

/** Reads a stored hash: either how to check a password against it, or why it is refused. */
function readStoredHash (stored: string): Readable | Refused {
  if (stored === '') return unusable('no password')
  if (stored.startsWith('!')) return unusable('an unusable password (Django\'s set_unusable_password)')
  const [algorithm, ...fields] = stored.split('$')
  switch (algorithm) {
    case 'pbkdf2_sha256':
    case 'pbkdf2_sha1':
      return readPbkdf2(algorithm, fields)
    case 'scrypt':
      return readScrypt(fields)
    case 'argon2':
      return readArgon2(stored.slice('argon2'.length))
    case 'bcrypt_sha256':
    case 'bcrypt':
      return readBcrypt(algorithm, stored.slice(algorithm.length + 1))
  }
  if (refusedAlgorithms.has(algorithm!)) return { kind: 'unsupported', reason: `${algorithm}: a fast hash, refused` }
  // Django's oldest unsalted MD5: 32 hex digits and nothing else.
  if (/^[0-9a-f]{32}$/.test(stored)) return { kind: 'unsupported', reason: 'unsalted_md5: a fast hash, refused' }
  return { kind: 'unsupported', reason: 'an unknown hash format' }
}

/** What a stored password hash is, and for one that can never match, why: what an importer reports. */
export function classifyPasswordHash (stored: string): StoredHashClass {
  if (stored.startsWith('$argon2id$')) return { kind: 'argon2id' }
  const read = readStoredHash(stored)
  return 'check' in read ? { kind: read.kind } : read
}

/** True when the hash is in a Django format this module verifies, within the caps. */
export const isVerifiableDjangoHash = (stored: string) => 'check' in readStoredHash(stored)

/**
 * True only when the password matches a Django hash in a supported format, within the caps. The password is
 * used as typed, UTF-8 encoded, as Django did: no normalisation. Never throws.
 */
export async function verifyDjangoHash (stored: string, password: string): Promise<boolean> {
  const read = readStoredHash(stored)
  if (!('check' in read)) return false
  try {
    return await read.check(password)
  } catch {
    return false
  }
}
