import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { privateTree, secureDataDir } from '../../src/data-dir.js'
import { build, testEnvironment } from '../helper.js'

const modeOf = async (path: string) => (await stat(path)).mode & 0o777

t.test('secureDataDir creates DATA_DIR 0700, and tightens one that others could enter', async (t) => {
  const root = t.testdir()
  const fresh = join(root, 'new', 'data')
  t.equal(await secureDataDir(fresh), 'private')
  t.equal(await modeOf(fresh), 0o700)

  const open = join(root, 'open')
  await mkdir(open, { mode: 0o755 })
  await chmod(open, 0o755)
  t.equal(await secureDataDir(open), 'tightened')
  t.equal(await modeOf(open), 0o700)
  t.equal(await secureDataDir(open), 'private', 'and says nothing the next time')
})

t.test('privateTree takes group and other permissions off every file and folder', async (t) => {
  const root = t.testdir({ a: { b: { 'file.txt': 'x' } }, 'top.txt': 'y' })
  await chmod(root, 0o755)
  for (const [path, mode] of [['a', 0o755], ['a/b', 0o777], ['a/b/file.txt', 0o666], ['top.txt', 0o640]] as const) await chmod(join(root, path), mode)
  await writeFile(join(root, 'own.txt'), 'z', { mode: 0o600 })
  await privateTree(root)
  t.equal(await modeOf(root), 0o700, 'the folder itself too')
  t.same(await Promise.all(['a', 'a/b', 'a/b/file.txt', 'top.txt', 'own.txt'].map((path) => modeOf(join(root, path)))), [0o700, 0o700, 0o600, 0o600, 0o600])
})

t.test('the service starts with a private DATA_DIR: its own files, PGlite\'s too, are the service user\'s alone', async (t) => {
  const environment = await testEnvironment(t)
  await chmod(environment.DATA_DIR!, 0o755)
  await build(t, environment)
  t.equal(await modeOf(environment.DATA_DIR!), 0o700)
  const entries = await readdir(environment.DATA_DIR!, { recursive: true })
  t.ok(entries.length > 0)
  const open = []
  for (const entry of entries) if ((await modeOf(join(environment.DATA_DIR!, entry)) & 0o077) !== 0) open.push(entry)
  t.same(open, [], 'no file or folder under DATA_DIR is open to others')
})
