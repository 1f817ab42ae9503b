import neostandard from 'neostandard'

/** Imports a layer may not make: imports run one way, from src/server.ts and src/app.ts down to src/'s library modules. */
const forbid = (...rules) => ({ 'no-restricted-imports': ['error', { patterns: rules }] })
const upward = (regex, message) => ({ regex, message })

const appAndServer = upward('(^|/)(app|server|cluster)\\.js$', 'only the top (src/server.ts, src/app.ts, src/cli/) builds the app')
const cli = upward('(^|/)cli/', 'commands are entry points; nothing imports them')
const bench = upward('(^|/)bench/', 'the benchmark is not part of the product')
const routes = upward('(^|/)routes/', 'routes are registered by src/app.ts only')
const plugins = upward('(^|/)plugins/', 'the library modules of src/ sit below the plugins')
const usersTable = { regex: '(^|/)db/schema\\.js$', importNames: ['users'], message: 'plugins/users.ts (fastify.usersRepository) is the only code that reads or writes users' }

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'data/**', 'drizzle/**'] }),
  {
    files: ['src/**/*.ts'],
    ignores: ['src/app.ts', 'src/server.ts', 'src/cluster.ts', 'src/cli/**'],
    rules: forbid(appAndServer, cli, bench, routes, plugins, usersTable)
  },
  { files: ['plugins/**/*.ts'], ignores: ['plugins/users.ts'], rules: forbid(appAndServer, cli, bench, routes, usersTable) },
  { files: ['plugins/users.ts'], rules: forbid(appAndServer, cli, bench, routes) },
  { files: ['routes/**/*.ts'], rules: forbid(appAndServer, cli, bench, usersTable) },
  { files: ['src/app.ts', 'src/server.ts', 'src/cluster.ts', 'src/cli/**/*.ts'], rules: forbid(bench, usersTable) }
]
