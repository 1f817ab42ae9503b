import { fileURLToPath } from 'node:url'

// This file runs as src/paths.ts under the test loader and as dist/src/paths.js when built;
// tests only ever load the first, so the built branch is covered by the end-to-end test alone.
/* c8 ignore next */
const projectRoot = new URL(import.meta.url.endsWith('.js') ? '../../' : '../', import.meta.url)

export const migrationsFolder = fileURLToPath(new URL('drizzle/', projectRoot))

/** package.json: its start script holds the Node.js flags the service runs with. */
export const packageJson = fileURLToPath(new URL('package.json', projectRoot))
