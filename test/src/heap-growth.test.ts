import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { boundHeapGrowth } from '../../src/heap-growth.js'

/** The most the old generation of a child making promoted garbage held, in bytes. */
async function oldGenerationPeak (mode: 'bounded' | 'default'): Promise<number> {
  const child = fork(fileURLToPath(new URL('heap-growth-child.ts', import.meta.url)), [mode])
  const [peak] = await once(child, 'message') as [number]
  await once(child, 'exit')
  return peak
}

t.test('bounded growth keeps the old generation far below what V8 lets it reach by default', async (t) => {
  const unbounded = await oldGenerationPeak('default')
  const bounded = await oldGenerationPeak('bounded')
  t.ok(bounded < unbounded * 0.75, `old generation peak: ${(bounded / 2 ** 20).toFixed(0)} MB bounded, ${(unbounded / 2 ** 20).toFixed(0)} MB by default`)
})

t.test("an operator's own --heap-growing-percent is left alone", async (t) => {
  t.equal(boundHeapGrowth(['--heap-growing-percent=100']), false)
  t.equal(boundHeapGrowth(['--heap_growing_percent=20']), false)
  t.equal(boundHeapGrowth(['--enable-source-maps']), true)
})
