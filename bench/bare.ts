// Ceiling 1: a bare Fastify route answering what GET /auth/me/ answers, with the same response schema. Given a
// public key, it first verifies each request's token as the service verifies one it has not seen before: its
// Ed25519 signature on libuv's thread pool (about 110 µs of CPU here), and nothing else.
import { createPublicKey, verify } from 'node:crypto'
import Fastify from 'fastify'
import { User } from '../src/schemas.js'

const { body, publicKey } = JSON.parse(process.argv[2]!) as { body: unknown, publicKey?: string }
const server = Fastify()
if (publicKey === undefined) {
  server.get('/auth/me/', { schema: { response: { 200: User } } }, async () => body)
} else {
  const key = createPublicKey(publicKey)
  server.get('/auth/me/', { schema: { response: { 200: User } } }, (request, reply) => {
    const token = request.headers.authorization!.slice('Bearer '.length)
    const dot = token.lastIndexOf('.')
    verify(null, Buffer.from(token.slice(0, dot)), key, Buffer.from(token.slice(dot + 1), 'base64url'), (error, valid) => {
      /* c8 ignore next: the harness sends only tokens the service signed */
      if (error !== null || !valid) return reply.send(new Error('a token the service did not sign'))
      reply.send(body)
    })
  })
}
await server.listen({ port: 0, host: '127.0.0.1' })
process.send!({ ready: true, port: (server.server.address() as { port: number }).port })
process.on('disconnect', async () => { await server.close() })
