// The service as a child process, started as the README says, for the end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import type { Test } from 'tap'

export async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

export interface Running {
  child: ChildProcess
  /** The server's own pid, from its first log line; npm's pid is child.pid. */
  serverPid?: number
  output: () => string
  exited: Promise<number | null>
}

/** Runs an npm script with the test environment; coverage of the child is not collected. */
export function npm (args: string[], environment: Record<string, string>, command = 'npm'): Running {
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  // Its own process group, so the teardown can end npm and the server together.
  const child = spawn(command, args, { env: { ...inherited, ...environment }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => output, exited }
}

/** `npm start`, or with `built` the server npm start built already, as production runs it. */
export async function startService (t: Test, environment: Record<string, string>, built = false): Promise<Running> {
  const running = built ? npm(['dist/src/server.js'], environment, process.execPath) : npm(['start', '--silent'], environment)
  t.teardown(() => {
    try { process.kill(-running.child.pid!, 'SIGKILL') } catch {}
  })
  const deadline = Date.now() + 90_000
  while (!running.output().includes('Server listening at')) {
    if (running.child.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${running.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  running.serverPid = Number(/"pid":(\d+)/.exec(running.output())![1])
  return running
}

/** One request on a connection of its own, so that the cluster's primary hands each to the next free worker. */
export function alone (port: number, method: string, path: string, { body, token }: { body?: object, token?: string } = {}) {
  return new Promise<{ status: number, type: string | undefined, text: string }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const request = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      method,
      agent: false,
      headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }
    }, (response) => {
      let text = ''
      response.on('data', (chunk) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode!, type: response.headers['content-type'], text }))
    })
    request.on('error', reject)
    request.end(payload)
  })
}
