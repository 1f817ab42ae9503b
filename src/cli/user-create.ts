// npm run user:create: registers one user from a JSON line on stdin, with the API's own validation.
//   echo '{"username":"ada","email":"ada@example.com","password":"correct horse battery staple"}' | npm run user:create
import { text } from 'node:stream/consumers'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app from '../app.js'
import { ConfigError, loadConfig } from '../config.js'
import { serverOptions } from '../options.js'

/**
 * Sends the line to POST /auth/register/ of an app that is built but never listens, so the rules, the
 * hashing and the answers are the API's own. Throttling is off: an operator is not a client.
 */
export async function createUser (line: string, environment: Record<string, string | undefined> = process.env): Promise<{ ok: boolean, body: unknown }> {
  const config = { ...loadConfig(environment), rateLimit: false, purgeInterval: 0 }
  const options = serverOptions({ ...config, logLevel: 'warn' })
  // Warnings (DATA_DIR tightened, say) go to stderr: stdout holds only the user, for scripts to read.
  const server = Fastify({ ...options, logger: { ...options.logger as object, stream: process.stderr } })
  await server.register(fp(app), { config })
  try {
    const response = await server.inject({ method: 'POST', url: '/auth/register/', headers: { 'content-type': 'application/json' }, payload: line })
    return { ok: response.statusCode === 201, body: response.json() }
  } finally {
    await server.close()
  }
}

/** The command: the user as JSON on stdout and exit 0, or the API's error on stderr and exit 1. */
export async function main (
  input: NodeJS.ReadableStream,
  environment: Record<string, string | undefined> = process.env,
  output: { write: (text: string) => unknown } = process.stdout,
  errors: { write: (text: string) => unknown } = process.stderr
): Promise<number> {
  try {
    const { ok, body } = await createUser((await text(input)).trim(), environment)
    ;(ok ? output : errors).write(`${JSON.stringify(body)}\n`)
    return ok ? 0 : 1
  } catch (error) {
    errors.write(`${error instanceof ConfigError ? error.message : String(error)}\n`)
    return 1
  }
}

/* c8 ignore next 3: runs only as the entry point, which the end-to-end test starts as a child process */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.stdin)
}
