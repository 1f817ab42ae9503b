// The old service this one replaces (Django + DRF + SimpleJWT under gunicorn, ../shared/django-service), run
// beside the bench on the same PostgreSQL server so both get the same load in the same run: `--peer django`.
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type autocannon from 'autocannon'

const run = promisify(execFile)

export const djangoRefreshScenario = 'POST /auth/refresh/, chained, vs Django'
/** As in the side-by-side measurement (wrk, 32 connections), for both services. */
export const peerConnections = 32
export const defaultPython = '/usr/bin/python3'

// This file runs as bench/peer-django.ts under the test loader and as dist/bench/peer-django.js when built.
/* c8 ignore next: the suite runs the TypeScript */
const projectRoot = new URL(import.meta.url.endsWith('.js') ? '../../' : '../', import.meta.url)

/**
 * The old service's folder: DJANGO_SERVICE_DIR, else shared/django-service beside the project, else the
 * workplace's /work/shared (a clone elsewhere, as CI's, has no sibling shared/).
 */
export function djangoServiceDir (): string {
  const candidates = [process.env.DJANGO_SERVICE_DIR, fileURLToPath(new URL('../shared/django-service/', projectRoot)), '/work/shared/django-service']
  const found = candidates.find((dir) => dir !== undefined && existsSync(join(dir, 'setup.sh')))
  /* c8 ignore next: only where the old service is nowhere */
  if (found === undefined) throw new Error(`the old Django service is not at any of ${candidates.filter(Boolean).join(', ')}: set DJANGO_SERVICE_DIR`)
  return found
}

/** Why the old service cannot run here, or undefined when it can. */
export async function djangoUnavailable (databaseUrl: string | undefined, python = defaultPython): Promise<string | undefined> {
  if (databaseUrl === undefined) return 'it runs on PostgreSQL only, and DATABASE_URL is unset'
  const url = new URL(databaseUrl)
  // seedauth/settings.py takes the host from PGHOST but fixes the user and the port.
  if (decodeURIComponent(url.username) !== 'postgres' || !['', '5432'].includes(url.port)) return 'the old service connects as user postgres on port 5432, which DATABASE_URL does not name'
  try {
    djangoServiceDir()
    // gunicorn runs as a module of the same Python, so one import checks it too.
    await run(python, ['-c', 'import django, rest_framework_simplejwt, psycopg2, gunicorn'])
  } catch (error) {
    return `${python} lacks Django, SimpleJWT, psycopg2 or gunicorn (bash ../shared/django-service/setup.sh installs Debian's): ${(error as Error).message.split('\n')[0]}`
  }
  return undefined
}

/**
 * A chained refresh load: each request takes a free refresh token, and the one it gets back goes back to the list.
 * gunicorn's sync workers close the connection after every answer, and autocannon writes the next request before
 * it sees the close (the server resets it unread: ECONNRESET, which autocannon counts as an error), then builds it
 * again on a new connection. So a token that got no answer goes out again on its connection, instead of a new one
 * being taken and a chain lost each time; `resets` counts those resets. A token the server did consume before a
 * reset would come back as a 401, and count as an error.
 */
export function chainedRefresh (free: string[], connections: number): { load: Omit<autocannon.Options, 'url' | 'duration' | 'amount'>, resets: () => number } {
  let resets = 0
  const load: Omit<autocannon.Options, 'url' | 'duration' | 'amount'> = {
    connections,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    setupClient: (client) => {
      let unanswered: string | undefined
      const events: NodeJS.EventEmitter = client // for connError, which autocannon's types leave out
      events.on('connError', (error: NodeJS.ErrnoException) => { if (error.code === 'ECONNRESET') resets++ })
      client.setRequests([{
        method: 'POST',
        setupRequest: (request) => {
          unanswered ??= free.shift()
          return { ...request, body: JSON.stringify({ refresh: unanswered }) }
        },
        onResponse: (status, body) => {
          unanswered = undefined
          if (status === 200) free.push((JSON.parse(body) as { refresh: string }).refresh)
        }
      }])
    }
  }
  return { load, resets: () => resets }
}

/* c8 ignore start: the suite's PostgreSQL run only */
/**
 * Migrates the old service's tables into `databaseUrl` (an empty database, made by the caller), starts gunicorn
 * with 4 workers on a free loopback port, and mints `tokens` refresh tokens, each the start of a chain. Stopping
 * gunicorn goes first into `cleanups`.
 */
export async function startDjango (databaseUrl: string, tokens: number, cleanups: Array<() => Promise<unknown>>, python = defaultPython): Promise<{ url: string, refreshTokens: string[] }> {
  const dir = djangoServiceDir()
  const url = new URL(databaseUrl)
  const env = { ...process.env, SEED_DB: url.pathname.slice(1), PGHOST: url.hostname, PGPASSWORD: decodeURIComponent(url.password) }
  // Not setup.sh: it makes its database on a fixed URL and may install packages; the bench made the database.
  await run(python, ['manage.py', 'migrate', '-v0'], { cwd: dir, env })

  const gunicorn = spawn(python, ['-m', 'gunicorn', '-w', '4', '-b', '127.0.0.1:0', 'seedauth.wsgi'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise((resolve) => gunicorn.once('exit', resolve))
  cleanups.unshift(async () => { gunicorn.kill('SIGINT'); await exited })
  const base = await new Promise<string>((resolve, reject) => {
    let log = ''
    const onData = (chunk: Buffer) => {
      log += chunk.toString()
      const listening = /Listening at: (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (listening !== null) { gunicorn.stderr.off('data', onData); gunicorn.stderr.resume(); resolve(listening[1]!) }
    }
    gunicorn.stderr.on('data', onData)
    gunicorn.once('exit', (code) => reject(new Error(`gunicorn exited with ${code}: ${log}`)))
  })
  // Listening is the master's socket; the first answer means a worker has booted.
  const answer = await fetch(`${base}/auth/me/`)
  if (answer.status !== 401) throw new Error(`the old service answered GET /auth/me/ without a token with ${answer.status}`)

  // Logging in through HTTP would cost a PBKDF2 of 720,000 iterations (0.45 s of CPU here) per chain; SimpleJWT's
  // login makes its refresh token with RefreshToken.for_user, as here, and the refresh route reads nothing else.
  const minted = await run(python, ['manage.py', 'shell', '-c', `
import json
from django.contrib.auth.models import User
from rest_framework_simplejwt.tokens import RefreshToken
user = User.objects.create_user('bench', 'bench@example.com', 'correct horse battery staple')
print(json.dumps([str(RefreshToken.for_user(user)) for _ in range(${tokens})]))
`], { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 })
  return { url: base, refreshTokens: JSON.parse(minted.stdout) as string[] }
}
/* c8 ignore stop */
