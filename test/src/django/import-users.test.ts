// The parts of the Django import that need no database; test/src/cli/import-django.test.ts runs the rest against a real Django.
import t from 'tap'
import { batches, batchSize } from '../../../src/django/import-users.js'

t.test('batches: rows in groups of batchSize, the last one shorter', async (t) => {
  const sizes: number[] = []
  for await (const batch of batches((async function * () { for (let i = 0; i < 2 * batchSize + 5; i++) yield i })())) sizes.push(batch.length)
  t.same(sizes, [batchSize, batchSize, 5])
  for await (const batch of batches((async function * () {})())) t.fail(`no batch of nothing: ${batch.length}`)
})
