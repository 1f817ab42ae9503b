import { chmod, mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Group and other permission bits. */
const shared = 0o077

/**
 * DATA_DIR holds the embedded database (every password hash and email) and the signing key: only the
 * service's own user may enter it. Creates it 0700, or tightens an existing one that others could enter.
 * Answers what it found; throws an error naming DATA_DIR when it cannot make it private.
 */
export async function secureDataDir (dataDir: string): Promise<'private' | 'tightened'> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const { mode } = await stat(dataDir)
  if ((mode & shared) === 0) return 'private'
  try {
    await chmod(dataDir, 0o700)
  /* c8 ignore next 3: only a directory owned by another user refuses, and the tests run as root, who may chmod anything */
  } catch (error) {
    throw new Error(`DATA_DIR: ${dataDir} is accessible to other users and could not be made private (${(error as Error).message}); run chmod 700 on it`)
  }
  return 'tightened'
}

/**
 * Takes group and other permissions off every file and folder under path. PGlite writes its files 0666
 * whatever the umask; inside a private DATA_DIR nobody else can reach them, and this keeps them private
 * should the directory ever be opened up.
 */
export async function privateTree (path: string): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true, recursive: true })
  for (const file of [path, ...entries.map((entry) => join(entry.parentPath, entry.name))]) {
    const { mode } = await stat(file)
    if ((mode & shared) !== 0) await chmod(file, mode & 0o700)
  }
}
