// The service as the benchmark runs it: the real server, plus the two readings only the process
// itself can take (event-loop delay and peak RSS), handed to the harness over IPC.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { main } from '../src/server.js'

const eventLoopDelay = monitorEventLoopDelay({ resolution: 10 })
eventLoopDelay.enable()

const server = await main()
/* c8 ignore next: the harness passes a valid configuration */
if (server === undefined) process.exit(1)
const { port } = server.server.address() as { port: number }
process.send!({ ready: true, port })

let cpuAtReset = process.cpuUsage()
process.on('message', (message: { command: 'reset' | 'stats' }) => {
  if (message.command === 'reset') {
    eventLoopDelay.reset()
    cpuAtReset = process.cpuUsage()
    process.send!({ reset: true })
  } else {
    process.send!({
      eventLoopDelayP99: eventLoopDelay.percentile(99) / 1e6,
      // Microseconds of CPU (user and system) since the reset: per request, a figure that other load on the machine moves little.
      cpu: (({ user, system }) => user + system)(process.cpuUsage(cpuAtReset)),
      // resourceUsage reports kibibytes: the high-water mark since the process started.
      peakRss: process.resourceUsage().maxRSS * 1024,
      // Where the resident set sits: V8's heap (in use, and reserved), and memory outside it (Buffers, the driver's).
      ...(({ rss, heapUsed, heapTotal, external }) => ({ rss, heapUsed, heapTotal, external }))(process.memoryUsage())
    })
  }
})
process.on('disconnect', async () => { await server.close() })
