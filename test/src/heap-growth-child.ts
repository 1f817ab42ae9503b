// A child of heap-growth.test.ts: makes garbage the way a loaded service does (objects that live long enough to be
// promoted to the old generation, then die there) and sends the most the old generation held.
import { getHeapSpaceStatistics } from 'node:v8'
import { boundHeapGrowth } from '../../src/heap-growth.js'

if (process.argv[2] === 'bounded') boundHeapGrowth([])
const oldSpace = () => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!.space_used_size
const living: unknown[] = new Array(300_000)
let peak = 0
for (let i = 0; i < 4_000_000; i++) {
  living[i % living.length] = { i, text: `x${i}`, list: [i, i + 1] }
  if (i % 10_000 === 0) peak = Math.max(peak, oldSpace())
}
process.send!(peak)
