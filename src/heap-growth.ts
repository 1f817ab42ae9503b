import { setFlagsFromString } from 'node:v8'

/**
 * On a machine with gigabytes of memory V8 lets the old generation grow to four times what survived its last full
 * collection. A request's objects that outlive a young-generation collection (those awaiting the database) are
 * promoted there: under refresh load the heap filled with 100 MB of such garbage before its first full collection,
 * and the service's resident set peaked at 275 MB (npm run bench). Growth by half keeps it near 160 MB, for a full
 * collection every few seconds, mostly on V8's background thread (BENCHMARKS.md, "Memory"). V8 reads the setting at
 * each collection, so setting it at start works; an operator's own `node --heap-growing-percent=N` is left alone.
 */
export function boundHeapGrowth (execArgv: string[] = process.execArgv): boolean {
  if (execArgv.some((argument) => /^--heap[-_]growing[-_]percent\b/.test(argument))) return false
  setFlagsFromString('--heap-growing-percent=50')
  return true
}
