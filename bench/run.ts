// npm run bench [-- --quick | --smoke] [--only <part of a scenario's name>] [--peer django] [--rows <N>]: runs the harness
// against the built service and prints the table; a full run of every scenario also writes it, with its chart, to
// docs/benchmarks/. DJANGO_PYTHON names the old Django service's Python (/usr/bin/python3 by default).
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { growthMarkdown } from './growth.js'
import { chart, markdown, runBench, type Mode } from './harness.js'

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, smoke: { type: 'boolean' }, only: { type: 'string' }, peer: { type: 'string' }, rows: { type: 'string' } } })
if (values.peer !== undefined && values.peer !== 'django') throw new Error(`--peer ${values.peer}: the only peer is django`)
const mode: Mode = values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full'
const tokenRows = values.rows === undefined ? undefined : Number(values.rows.replace(/_/g, ''))
if (tokenRows !== undefined && !(Number.isSafeInteger(tokenRows) && tokenRows > 0)) throw new Error(`--rows ${values.rows}: a number of token rows`)
const report = await runBench({ mode, only: values.only, databaseUrl: process.env.DATABASE_URL, peer: values.peer, python: process.env.DJANGO_PYTHON, log: (line) => console.error(`# ${line}`), tokenRows })
const table = markdown(report)
console.log(table)
if (report.growth !== undefined) console.log(`\n${growthMarkdown(report.growth)}`)
if (mode === 'full' && values.only === undefined && tokenRows === undefined) {
  const directory = new URL('../../docs/benchmarks/', import.meta.url)
  const name = report.database.toLowerCase()
  await mkdir(directory, { recursive: true })
  await writeFile(new URL(`${name}.md`, directory), `${table}\n`)
  await writeFile(new URL(`${name}.svg`, directory), `${chart(report)}\n`)
  console.error(`# wrote docs/benchmarks/${name}.md and docs/benchmarks/${name}.svg`)
}
process.exitCode = report.pass ? 0 : 1
