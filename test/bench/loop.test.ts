import t from 'tap'
import { loop } from '../../bench/loop.js'

t.test('loop keeps inFlight operations going until amount, counting failures apart', async (t) => {
  let running = 0
  let most = 0
  const workers = new Set<number>()
  let calls = 0
  const result = await loop(async (worker) => {
    workers.add(worker)
    running++
    most = Math.max(most, running)
    await new Promise((resolve) => setTimeout(resolve, 2))
    running--
    if (++calls % 5 === 0) throw new Error('every fifth fails')
  }, { inFlight: 3, seconds: 60, amount: 50 })
  t.equal(calls, 50)
  t.equal(result.errors, 10)
  t.equal(result.operations, 40, 'successes only')
  t.same([...workers].sort(), [0, 1, 2])
  t.equal(most, 3)
  t.ok(result.p50 >= 1 && result.p50 <= result.p99, 'latencies in milliseconds, p50 ≤ p99')
  t.equal(result.rate, result.operations / result.seconds)
})

t.test('without an amount, loop stops after seconds', async (t) => {
  const result = await loop(() => new Promise((resolve) => setTimeout(resolve, 5)), { inFlight: 2, seconds: 0.2 })
  t.ok(result.seconds >= 0.2 && result.seconds < 1, `ran ${result.seconds} s`)
  t.ok(result.operations > 10)
  t.equal(result.errors, 0)
})

t.test('a run where every operation fails reports zero latencies', async (t) => {
  const result = await loop(async () => { throw new Error('down') }, { inFlight: 2, seconds: 60, amount: 4 })
  t.match(result, { operations: 0, errors: 4, rate: 0, p50: 0, p99: 0 })
})
