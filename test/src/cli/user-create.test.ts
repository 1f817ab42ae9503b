// npm run user:create: one user from a JSON line on stdin, validated as the API validates.
import { Readable } from 'node:stream'
import t from 'tap'
import { main } from '../../../src/cli/user-create.js'
import { build, newUser, testEnvironment } from '../../helper.js'

async function run (line: string, environment: Record<string, string>) {
  let stdout = ''
  let stderr = ''
  const code = await main(Readable.from([line]), environment, { write: (text) => { stdout += text } }, { write: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

t.test('creates a user the API then logs in, and refuses what the API refuses', async (t) => {
  const environment = await testEnvironment(t)
  const user = newUser()
  const created = await run(`${JSON.stringify(user)}\n`, environment)
  t.equal(created.code, 0)
  t.equal(created.stderr, '')
  t.match(JSON.parse(created.stdout), { id: Number, username: user.username, email: user.email })
  t.notMatch(created.stdout, /password/, 'the password is never printed')

  const again = await run(JSON.stringify({ ...user, email: 'other@example.com' }), environment)
  t.equal(again.code, 1)
  t.match(JSON.parse(again.stderr), { statusCode: 409, code: 'username_taken' })
  const weak = await run(JSON.stringify(newUser({ password: 'password' })), environment)
  t.equal(weak.code, 1)
  t.match(JSON.parse(weak.stderr), { code: 'invalid_request', errors: { password: [String] } })
  const notJson = await run('username=ada', environment)
  t.equal(notJson.code, 1)
  t.match(JSON.parse(notJson.stderr), { statusCode: 400, code: 'invalid_request' })

  const app = await build(t, environment)
  const login = await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: user.username, password: user.password } })
  t.equal(login.statusCode, 200, 'the created user logs in through the API')
})

t.test('a bad configuration is reported, one line per variable, and exit code 1', async (t) => {
  const result = await run(JSON.stringify(newUser()), { DATA_DIR: t.testdir(), ACCESS_TOKEN_TTL: 'soon' })
  t.equal(result.code, 1)
  t.match(result.stderr, /^Invalid configuration:\n {2}ACCESS_TOKEN_TTL: /)
})

t.test('a database that cannot be opened is reported, with exit code 1', async (t) => {
  // A data dir that is a file.
  const result = await run(JSON.stringify(newUser()), { DATA_DIR: 'package.json' })
  t.equal(result.code, 1)
  t.match(result.stderr, /EEXIST|ENOTDIR/)
})
