import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createDeviceTokens, deviceTokenLifetime } from '../../plugins/device-tokens.js'

t.test('a device token is trusted for its user alone, for a year, and only as issued', async (t) => {
  let time = Date.now()
  const signingKey = generateKeyPairSync('ed25519').privateKey
  const tokens = createDeviceTokens({ signingKey }, () => time)
  const token = tokens.issue(42)
  t.match(token, /^dt1\.42\.\d+\.[\w-]{22}\.[\w-]{43}$/)
  t.ok(tokens.trusted(token, 42))
  t.ok(createDeviceTokens({ signingKey }).trusted(token, 42), 'by every instance with the same signing key')
  t.notOk(createDeviceTokens({ signingKey: generateKeyPairSync('ed25519').privateKey }).trusted(token, 42), 'not with another key')
  t.notOk(tokens.trusted(token, 43), 'another user')
  t.notOk(tokens.trusted(token.replace('dt1.42.', 'dt1.43.'), 43), 'its user changed')
  t.notOk(tokens.trusted(`${token.slice(0, -2)}AA`, 42), 'its MAC changed')
  t.notOk(tokens.trusted(token.slice(0, -3), 42), 'its MAC cut short')
  const [, , issued] = token.split('.')
  t.notOk(tokens.trusted(token.replace(`.${issued}.`, `.${Number(issued) + 1}.`), 42), 'its time changed')
  for (const garbage of [undefined, '', 'dt1', 'dt2.42.1.a.b', 'dt1.42.x.a.b', `${token}.extra`]) t.notOk(tokens.trusted(garbage, 42), String(garbage))
  time += (deviceTokenLifetime + 1) * 1000
  t.notOk(tokens.trusted(token, 42), 'expired after a year')
  time -= 2 * (deviceTokenLifetime + 1) * 1000
  t.notOk(tokens.trusted(token, 42), 'nor issued in the future')
})
