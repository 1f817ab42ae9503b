// npm run keys:generate: prints a new Ed25519 key pair for JWT_PRIVATE_KEY and JWT_PUBLIC_KEY.
import { generateKeyPem } from '../keys.js'

const { privateKey, publicKey } = generateKeyPem()
process.stdout.write(`# JWT_PRIVATE_KEY\n${privateKey}# JWT_PUBLIC_KEY\n${publicKey}`)
