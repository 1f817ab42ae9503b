import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Webhook } from 'standardwebhooks'
import type { Test } from 'tap'

/** A delivery the receiver verified with the standardwebhooks package and answered 2xx. */
export interface ReceivedWebhook {
  /** The webhook-id header. */
  id: string
  type: string
  /** The body's timestamp: when the event happened. */
  timestamp: string
  data: Record<string, unknown>
  headers: IncomingHttpHeaders
  /** The body as received. */
  body: string
}

/** Every request that reached the receiver, delivered or not. */
export interface Attempt {
  /** The webhook-id header. */
  id: string | undefined
  path: string
  /** What the receiver answered; 0 while it hangs, or if it never answered. */
  status: number
  /** Whether the signature verified. */
  verified: boolean
}

export interface WebhookReceiver {
  /** http://127.0.0.1:<port>/webhooks */
  url: string
  port: number
  /** The secret it verifies with: the one of webhookEnvironment(). */
  secret: string
  /** Verified and answered 2xx, in order. */
  deliveries: ReceivedWebhook[]
  attempts: Attempt[]
  /** The next `times` verified requests are answered `status` (with `headers`), then 204 again. */
  answerNext: (status: number, times?: number, headers?: Record<string, string>) => void
  /** While true, requests get no answer until the receiver stops. */
  hang: boolean
  /** Stops listening and drops open connections, hung requests too: the receiver is down. */
  stop: () => Promise<void>
  /** Listens again on the same port after stop(). */
  start: () => Promise<void>
}

/** One secret for every receiver, so that an app can post to several. */
export const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`

/** Starts a receiver on a free port of 127.0.0.1 (port 0 unless given); closed when the test t ends. */
export async function startWebhookReceiver (t: Test, options: { port?: number } = {}): Promise<WebhookReceiver> {
  const verifier = new Webhook(webhookSecret)
  const planned: Array<{ status: number, headers: Record<string, string> }> = []
  let server: Server | undefined

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const attempt: Attempt = { id: request.headers['webhook-id'] as string | undefined, path: request.url!, status: 0, verified: false }
      receiver.attempts.push(attempt)
      let payload: { type: string, timestamp: string, data: Record<string, unknown> }
      try {
        payload = verifier.verify(body, request.headers as Record<string, string>) as typeof payload
        attempt.verified = true
      } catch {
        attempt.status = 401
        response.writeHead(401).end('signature not verified')
        return
      }
      if (receiver.hang) return
      const answer = planned.shift()
      if (answer !== undefined) {
        attempt.status = answer.status
        response.writeHead(answer.status, answer.headers).end(`answered ${answer.status}`)
        return
      }
      attempt.status = 204
      receiver.deliveries.push({ id: attempt.id!, type: payload.type, timestamp: payload.timestamp, data: payload.data, headers: request.headers, body })
      response.writeHead(204).end()
    })
  }

  const start = async (): Promise<void> => {
    if (server !== undefined) return
    const instance = createServer(handle)
    await new Promise<void>((resolve, reject) => {
      instance.once('error', reject)
      instance.listen(receiver.port, '127.0.0.1', () => {
        instance.off('error', reject)
        resolve()
      })
    })
    receiver.port = (instance.address() as { port: number }).port
    receiver.url = `http://127.0.0.1:${receiver.port}/webhooks`
    server = instance
  }

  const stop = async (): Promise<void> => {
    const instance = server
    if (instance === undefined) return
    server = undefined
    const closed = new Promise((resolve) => instance.close(resolve))
    instance.closeAllConnections()
    await closed
  }

  const receiver: WebhookReceiver = {
    url: '',
    port: options.port ?? 0,
    secret: webhookSecret,
    deliveries: [],
    attempts: [],
    answerNext (status, times = 1, headers = {}) {
      for (let i = 0; i < times; i++) planned.push({ status, headers })
    },
    hang: false,
    stop,
    start
  }
  t.teardown(stop)
  await start()
  return receiver
}

/** The variables that send the service's webhooks to these receivers. */
export const webhookEnvironment = (...receivers: WebhookReceiver[]) => ({
  WEBHOOK_URLS: receivers.map((receiver) => receiver.url).join(','),
  WEBHOOK_SECRET: webhookSecret
})

/** Waits until condition() holds, looking every 25 ms; throws, naming what it waited for, after timeoutMs. */
export async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
