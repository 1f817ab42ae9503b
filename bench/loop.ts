/** What one timed run measured, in the units autocannon reports. */
export interface Measured {
  operations: number
  errors: number
  seconds: number
  /** Operations per second. */
  rate: number
  /** Milliseconds. */
  p50: number
  /** Milliseconds. */
  p99: number
}

export interface LoopOptions {
  /** Operations kept in flight at once. */
  inFlight: number
  /** Stop after this many seconds... */
  seconds: number
  /** ...unless given this many operations to make. */
  amount?: number
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

/** Runs `operation` with `inFlight` copies going at once, as autocannon keeps its connections busy. */
export async function loop (operation: (worker: number) => Promise<unknown>, { inFlight, seconds, amount }: LoopOptions): Promise<Measured> {
  const latencies: number[] = []
  let errors = 0
  let started = 0
  const begin = performance.now()
  const deadline = begin + seconds * 1000
  const more = () => amount === undefined ? performance.now() < deadline : started < amount
  await Promise.all(Array.from({ length: inFlight }, async (_, worker) => {
    while (more()) {
      started++
      const start = performance.now()
      try {
        await operation(worker)
        latencies.push(performance.now() - start)
      } catch {
        errors++
      }
    }
  }))
  const elapsed = (performance.now() - begin) / 1000
  latencies.sort((a, b) => a - b)
  return { operations: latencies.length, errors, seconds: elapsed, rate: latencies.length / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}
