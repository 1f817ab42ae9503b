import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createDeviceTokens, deviceTokenLifetime } from '../../plugins/device-tokens.js'

t.test('a device token is trusted for its user and password alone, for a year, and only as issued', async (t) => {
  let time = Date.now()
  const signingKey = generateKeyPairSync('ed25519').privateKey
  const tokens = createDeviceTokens({ signingKey }, () => time)
  const hash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'
  const token = tokens.issue(42, hash)
  t.match(token, /^dt1\.42\.\d+\.[\w-]{22}\.[\w-]{43}$/)
  t.equal(tokens.trusted(token, 42, hash), token.split('.')[3], 'trusted, and known by its nonce')
  t.ok(createDeviceTokens({ signingKey }).trusted(token, 42, hash), 'by every instance with the same signing key')
  t.equal(createDeviceTokens({ signingKey: generateKeyPairSync('ed25519').privateKey }).trusted(token, 42, hash), undefined, 'not with another key')
  t.equal(tokens.trusted(token, 42, `${hash}x`), undefined, 'not once the password changed')
  t.equal(tokens.trusted(token, 43, hash), undefined, 'another user')
  t.equal(tokens.trusted(token.replace('dt1.42.', 'dt1.43.'), 43, hash), undefined, 'its user changed')
  t.equal(tokens.trusted(`${token.slice(0, -2)}AA`, 42, hash), undefined, 'its MAC changed')
  t.equal(tokens.trusted(token.slice(0, -3), 42, hash), undefined, 'its MAC cut short')
  const [, , issued] = token.split('.')
  t.equal(tokens.trusted(token.replace(`.${issued}.`, `.${Number(issued) + 1}.`), 42, hash), undefined, 'its time changed')
  for (const garbage of [undefined, '', 'dt1', 'dt2.42.1.a.b', 'dt1.42.x.a.b', `${token}.extra`]) t.equal(tokens.trusted(garbage, 42, hash), undefined, String(garbage))
  time += (deviceTokenLifetime + 1) * 1000
  t.equal(tokens.trusted(token, 42, hash), undefined, 'expired after a year')
  time -= 2 * (deviceTokenLifetime + 1) * 1000
  t.equal(tokens.trusted(token, 42, hash), undefined, 'nor issued in the future')
})
