// WEB_CONCURRENCY=N: a primary process forks N workers that share the port (node:cluster), for machines
// with several cores. Loaded only by the entry point of src/server.ts, in the primary.
import cluster from 'node:cluster'
import pino from 'pino'
import { answerMetricsRequests } from './cluster-metrics.js'
import { ConfigError, loadConfig } from './config.js'

/**
 * Starts the workers and answers the exit code once they are all gone. SIGTERM or SIGINT is passed on to
 * every worker as SIGTERM, and each closes gracefully. A worker that dies after it listened is replaced;
 * one that never listened (a busy port, an unreachable database) would fail again, so all are stopped.
 */
/* c8 ignore start: runs only in the primary of `npm start` with WEB_CONCURRENCY, which needs PostgreSQL:
   test/e2e.test.ts drives it there, and its coverage is collected only in part from that process */
export async function supervise (environment: Record<string, string | undefined> = process.env): Promise<number> {
  let workers: number
  let logLevel: string
  try {
    ({ webConcurrency: workers, logLevel } = loadConfig(environment))
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error)
    return 1
  }
  const log = pino({ level: logLevel })
  const listening = new Set<number>()
  let stopping = false
  let failed = false
  // Counted here: cluster.workers drops a worker only once it has both exited and disconnected.
  let alive = 0

  const fork = () => {
    alive++
    const worker = cluster.fork()
    worker.once('listening', () => listening.add(worker.id))
  }
  const stop = (reason: string) => {
    if (stopping) return
    stopping = true
    log.info({ reason }, 'stopping the workers')
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
  }

  // Each worker's /metrics asks here for the metrics of all.
  answerMetricsRequests(cluster)
  for (let i = 0; i < workers; i++) fork()
  log.info({ workers }, 'primary started')
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  return new Promise((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      alive--
      const listened = listening.delete(worker.id)
      if (!stopping && listened) {
        log.error({ pid: worker.process.pid, code, signal }, 'worker died: starting another')
        fork()
        return
      }
      if (!stopping) {
        log.error({ pid: worker.process.pid, code, signal }, 'worker failed to start')
        failed = true
        stop('a worker failed to start')
      }
      // A worker ended by a signal while stopping has not failed; one that exits 1 has (SHUTDOWN_TIMEOUT).
      if (code !== 0 && code !== null) failed = true
      if (alive === 0) resolve(failed ? 1 : 0)
    })
  })
}
/* c8 ignore stop */
