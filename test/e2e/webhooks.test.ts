// The real thing: a webhook queued while its receiver is down, attempted by the service, which is then killed
// (SIGKILL, no shutdown), goes out exactly once after the restart, under the message id of its row.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { openDatabase } from '../../src/db/connect.js'
import { webhookOutbox } from '../../src/db/schema.js'
import { testEnvironment } from '../helper.js'
import { startWebhookReceiver, waitFor, webhookEnvironment } from '../webhook-receiver.js'
import { freePort, startService } from './service.js'

/** The service's database, opened while the service is not running: PGlite serves one process at a time. */
async function withDatabase<T> (environment: Record<string, string>, use: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const connection = await openDatabase({ databaseUrl: environment.DATABASE_URL, databasePoolSize: 1, dataDir: environment.DATA_DIR! })
  try {
    return await use(connection.db)
  } finally {
    await connection.close()
  }
}

t.test('a webhook attempted before a SIGKILL, not yet delivered, goes out once after the restart', async (t) => {
  const receiver = await startWebhookReceiver(t)
  await receiver.stop()
  const port = await freePort()
  const environment = await testEnvironment(t, { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', WEBHOOK_TIMEOUT: '2s', ...webhookEnvironment(receiver) })
  // Queued as the service queues it, by a row in webhook_outbox, before the service starts.
  const messageId = `msg_${randomUUID().replaceAll('-', '')}`
  const payload = JSON.stringify({ type: 'user.deleted', timestamp: new Date().toISOString(), data: { user_id: 42 } })
  await withDatabase(environment, (db) => db.insert(webhookOutbox).values({ messageId, url: receiver.url, type: 'user.deleted', payload, userId: 42 }))

  // npm start, as the README says; then the built server, as production runs it.
  const first = await startService(t, environment)
  await waitFor(() => first.output().includes('"msg":"webhook not delivered: retrying"'), 10_000, 'a failed attempt')
  t.match(first.output(), new RegExp(`"messageId":"${messageId}".*"failure":"ECONNREFUSED`), 'the receiver was down: the webhook waits in the outbox')
  process.kill(first.serverPid!, 'SIGKILL')
  await first.exited

  await receiver.start()
  const second = await startService(t, environment, true)
  await waitFor(() => receiver.deliveries.length === 1, 15_000, 'the delivery')
  t.match(receiver.deliveries[0], { id: messageId, type: 'user.deleted', data: { user_id: 42 }, body: payload })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(receiver.attempts.length, 1, 'exactly once')
  process.kill(second.serverPid!, 'SIGTERM')
  t.equal(await second.exited, 0)

  const [row] = await withDatabase(environment, (db) => db.select().from(webhookOutbox))
  t.match(row, { messageId, status: 'sent', payload: null })
  t.ok(row!.attempts >= 2, `${row!.attempts} attempts`)
})
