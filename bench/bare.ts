// Ceiling 1: a bare Fastify route answering what GET /auth/me/ answers, with the same response schema.
import Fastify from 'fastify'
import { User } from '../src/schemas.js'

const body = JSON.parse(process.argv[2]!) as unknown
const server = Fastify()
server.get('/auth/me/', { schema: { response: { 200: User } } }, async () => body)
await server.listen({ port: 0, host: '127.0.0.1' })
process.send!({ ready: true, port: (server.server.address() as { port: number }).port })
process.on('disconnect', async () => { await server.close() })
