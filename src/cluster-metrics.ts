// Under WEB_CONCURRENCY, /metrics answers the metrics of every worker: the worker that got the scrape asks the
// primary over the cluster's IPC channel, and the primary gathers every worker's registries with prom-client's
// AggregatorRegistry, which adds them up by each metric's aggregator.
import cluster from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'

const request = 'auth-service:metrics-request'
const answer = 'auth-service:metrics-answer'

interface Answer {
  type: typeof answer
  id: number
  /** Prometheus text, or else the error that kept the primary from gathering it. */
  metrics?: string
  error?: string
}

/** One end of a cluster's IPC channel: a worker's process, or the primary's handle of one worker. */
export interface Channel {
  send?: (message: object, callback: (error: Error | null) => void) => boolean
}

/** A worker's end of the channel to its primary: its own process. */
export interface PrimaryChannel extends Channel {
  on: (event: 'message', listener: (message: Answer) => void) => unknown
}

/** The channel to the primary in a worker of WEB_CONCURRENCY; undefined in a process of its own. */
export function primaryChannel (isWorker = cluster.isWorker): PrimaryChannel | undefined {
  return isWorker ? process : undefined
}

/**
 * In a worker: lends the registries to the primary's aggregation, and returns a function that asks the primary for
 * the metrics of every worker. It rejects with the primary's error (prom-client's "Operation timed out." when a
 * worker has not answered within 5 s), or when the primary itself does not answer within `timeout` ms.
 */
export function askPrimaryForMetrics (channel: PrimaryChannel, registries: Registry[], timeout = 6000): () => Promise<string> {
  AggregatorRegistry.setRegistries(registries)
  // Its constructor adds the listener by which this worker answers the primary with the registries set above.
  new AggregatorRegistry() // eslint-disable-line no-new
  const waiting = new Map<number, (answer: Answer | Error) => void>()
  let next = 0
  channel.on('message', (message) => {
    if (message?.type === answer) waiting.get(message.id)?.(message)
  })
  return () => new Promise((resolve, reject) => {
    const id = next++
    const settle = (result: Answer | Error) => {
      clearTimeout(timer)
      waiting.delete(id)
      if (result instanceof Error) reject(result)
      else if (result.error !== undefined) reject(new Error(result.error))
      else resolve(result.metrics ?? '')
    }
    const timer = setTimeout(() => settle(new Error(`the primary did not answer within ${timeout} ms`)), timeout)
    waiting.set(id, settle)
    // Without the callback, a channel already closed would emit an error on the process, which nothing handles.
    channel.send!({ type: request, id }, (error) => { if (error !== null) settle(error) })
  })
}

/** The primary's side: its workers' messages. */
export interface Workers {
  on: (event: 'message', listener: (worker: Channel, message: { type?: unknown, id?: unknown } | null) => void) => unknown
}

/** In the primary: answers each worker's request with the metrics of every worker, aggregated. */
export function answerMetricsRequests (workers: Workers, aggregator: { clusterMetrics: () => Promise<string> } = new AggregatorRegistry()): void {
  workers.on('message', (worker, message) => {
    if (message?.type !== request) return
    const reply = (content: Pick<Answer, 'metrics' | 'error'>) =>
      // A worker gone meanwhile cannot be answered; its request is moot.
      worker.send!({ type: answer, id: message.id, ...content }, () => {})
    aggregator.clusterMetrics().then((metrics) => reply({ metrics }), (error: Error) => reply({ error: error.message }))
  })
}
