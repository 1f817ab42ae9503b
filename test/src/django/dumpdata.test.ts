// readDumpdata: manage.py dumpdata's one JSON array, read element by element from chunks of any size.
import t from 'tap'
import { readDumpdata } from '../../../src/django/dumpdata.js'

async function read (chunks: string[]): Promise<unknown[]> {
  const entries: unknown[] = []
  for await (const entry of readDumpdata((async function * () { yield * chunks })())) entries.push(entry)
  return entries
}

const entries = [
  { model: 'auth.user', pk: 1, fields: { username: 'ada', email: 'ada@example.com', groups: [], user_permissions: [[1, 2]] } },
  { model: 'auth.user', pk: 2, fields: { username: 'quote" back\\slash {[}]', email: '', nested: { a: { b: [] } } } },
  { model: 'auth.user', pk: 3, fields: { username: 'Zoë ✓ 𝒜', email: 'zoe@example.com' } }
]

t.test('yields each element, whether the file comes whole or a character at a time', async (t) => {
  const compact = JSON.stringify(entries)
  const indented = `\n${JSON.stringify(entries, null, '\t').replaceAll('\n', '\r\n')}  \n`
  t.same(await read([compact]), entries)
  t.same(await read([...compact]), entries, 'one character per chunk')
  t.same(await read([...indented]), entries, 'dumpdata --indent, with CRLF line ends and tabs')
  t.same(await read(['[', ']']), [], 'an empty dump')
})

t.test('anything but one array of objects is refused', async (t) => {
  for (const text of ['{"pk": 1}', '[,{}]', '[{}{}]', '[{} x]', '[1]', '[{}] [', '[{}', '', '[{"pk": }]']) {
    await t.rejects(read([text]), { name: 'DumpdataError' }, JSON.stringify(text))
  }
  await t.rejects(read(['[{"pk": }]']), { message: /^not a dumpdata file: / })
  await t.rejects(read(['[{}']), { message: 'not a dumpdata file: it ends before its closing ]' })
})
