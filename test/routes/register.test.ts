import { eq } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../src/db/schema.js'
import { build, newUser } from '../helper.js'

const fullwidth = (text: string) => [...text].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xFEE0)).join('')

t.test('register', async (t) => {
  const app = await build(t)
  const register = (payload: unknown) => app.inject({ method: 'POST', url: '/auth/register/', payload: payload as object })
  const userCount = () => app.db.$count(users)

  t.test('creates a user and answers without the password', async (t) => {
    const body = newUser()
    const response = await register(body)
    t.equal(response.statusCode, 201)
    const user = response.json()
    t.same(Object.keys(user).sort(), ['created_at', 'email', 'email_verified', 'id', 'username'])
    t.equal(user.email_verified, false, 'no address is verified at registration')
    t.match(user, { id: Number, username: body.username, email: body.email })
    t.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.notMatch(response.body, /argon2|correct horse/)
    t.equal(response.headers['cache-control'], 'no-store')

    const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
    t.match(row!.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
    t.equal(row!.createdAt.toISOString(), user.created_at)
  })

  t.test('answers on the old path and without the trailing slash', async (t) => {
    for (const url of ['/auth/registration/', '/auth/register', '/auth/registration']) {
      const response = await app.inject({ method: 'POST', url, payload: newUser() })
      t.equal(response.statusCode, 201, url)
    }
  })

  t.test('accepts usernames in any script, with digits, dots, underscores and hyphens', async (t) => {
    for (const username of ['Zoë.k', 'Δημήτρης_1', 'नमस्ते-2', '李小龍', 'a-b', 'Nguyê\u0303n']) {
      const response = await register(newUser({ username: `${username}${process.pid % 1000}` }))
      t.equal(response.statusCode, 201, username)
    }
  })

  t.test('refuses bad usernames with a field error', async (t) => {
    const cases: Array<[string, string]> = [
      ['ab', 'Ensure this field has at least 3 characters.'],
      ['a'.repeat(151), 'Ensure this field has no more than 150 characters.'],
      ['ann@home', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      ['ann smith', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      ['ann\u0007x', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      ['ann\u202Exyz', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      ['ann\u200Dxyz', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      ['zalgo' + 'o\u0334\u0335\u0336\u0337\u0338', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.'],
      // NFKC turns this one character into two letters: 151 with the rest.
      ['a'.repeat(149) + '\u3387', 'Ensure this field has no more than 150 characters.'],
      // And these three code points into two.
      ['e\u0301x', 'Ensure this field has at least 3 characters.']
    ]
    const before = await userCount()
    for (const [username, message] of cases) {
      const response = await register(newUser({ username }))
      t.equal(response.statusCode, 400, JSON.stringify(username))
      t.match(response.json(), { statusCode: 400, error: 'Bad Request', code: 'invalid_request', message: 'Invalid input.', errors: { username: [message] } })
    }
    t.equal(await userCount(), before, 'nothing was stored')
  })

  t.test('usernames are unique after NFKC and case folding', async (t) => {
    const name = `Admin${process.pid}`
    t.equal((await register(newUser({ username: name }))).statusCode, 201)
    for (const variant of [name.toLowerCase(), name.toUpperCase(), fullwidth(name.toLowerCase())]) {
      const response = await register(newUser({ username: variant }))
      t.equal(response.statusCode, 409, variant)
      t.match(response.json(), { statusCode: 409, error: 'Conflict', code: 'username_taken' })
    }
    t.equal((await register(newUser({ username: `straße${process.pid}` }))).statusCode, 201)
    t.equal((await register(newUser({ username: `STRASSE${process.pid}` }))).statusCode, 409, 'ß folds to ss')
  })

  t.test('emails are valid addresses, unique case-insensitively', async (t) => {
    for (const email of ['plain', 'a@b', 'two@@example.com', 'sp ace@example.com', `${'a'.repeat(65)}@example.com`, `a@${'b'.repeat(250)}.com`]) {
      const response = await register(newUser({ email }))
      t.equal(response.statusCode, 400, email)
      t.ok(response.json().errors.email, email)
    }
    const body = newUser({ email: `Mixed.Case${process.pid}@Example.COM` })
    const created = await register(body)
    t.equal(created.statusCode, 201)
    t.equal(created.json().email, `Mixed.Case${process.pid}@example.com`, 'the domain is lower-cased')
    const duplicate = await register(newUser({ email: body.email.toLowerCase() }))
    t.equal(duplicate.statusCode, 409)
    t.match(duplicate.json(), { code: 'email_taken' })
  })

  t.test('password policy', async (t) => {
    const refused: Array<[Partial<ReturnType<typeof newUser>>, string]> = [
      [{ password: 'short12' }, 'Ensure this field has at least 8 characters.'],
      [{ password: 'x'.repeat(257) }, 'Ensure this field has no more than 256 characters.'],
      [{ password: 'iloveyou' }, 'This password is too common.'],
      [{ password: 'Password1' }, 'This password is too common.'],
      [{ username: `kim${process.pid}`, password: `my-KIM${process.pid}-pass` }, 'The password is too similar to the username.'],
      [{ email: `robert${process.pid}@example.com`, password: `xx-robert${process.pid}-yy` }, 'The password is too similar to the email address.']
    ]
    for (const [overrides, message] of refused) {
      const response = await register(newUser(overrides))
      t.equal(response.statusCode, 400, message)
      t.same(response.json().errors, { password: [message] }, message)
    }
    // Lengths count code points: 256 emoji are 512 UTF-16 units.
    t.equal((await register(newUser({ password: '🔑'.repeat(256) }))).statusCode, 201)
    // A local part shorter than 4 characters is not checked.
    t.equal((await register(newUser({ email: `bo${process.pid % 10}@example.com`, password: `bo${process.pid % 10}-long-enough-pw` }))).statusCode, 201)
  })

  t.test('bad input is a 400 with every field error and never coerced', async (t) => {
    const missing = await register({})
    t.equal(missing.statusCode, 400)
    t.same(missing.json().errors, {
      username: ['This field is required.'],
      email: ['This field is required.'],
      password: ['This field is required.']
    })
    for (const username of [12345, ['alice'], { name: 'alice' }, null, true]) {
      const response = await register({ ...newUser(), username })
      t.equal(response.statusCode, 400, JSON.stringify(username))
      t.same(response.json().errors, { username: ['Must be of type string.'] })
    }
    const array = await register([newUser()])
    t.equal(array.statusCode, 400)
    t.same(array.json().errors, { non_field_errors: ['Must be of type object.'] })
  })

  t.test('unknown fields are ignored, never stored', async (t) => {
    const response = await register({ ...newUser(), is_superuser: true, id: 1 })
    t.equal(response.statusCode, 201)
    t.not(response.json().id, 1)
  })

  t.test('twenty racing registrations of one username: one 201, nineteen 409s', async (t) => {
    const username = `racer${process.pid}`
    const responses = await Promise.all(Array.from({ length: 20 }, () => register(newUser({ username }))))
    const statuses = responses.map((response) => response.statusCode).sort()
    t.same(statuses, [201, ...Array(19).fill(409)])
    for (const response of responses.filter((r) => r.statusCode === 409)) t.equal(response.json().code, 'username_taken')
    const rows = await app.db.select().from(users).where(eq(users.usernameKey, username.toLowerCase()))
    t.equal(rows.length, 1)
  })
})
