import t from 'tap'
import { clientKey } from '../../src/client-address.js'

t.test('clientKey: IPv4 as it is, IPv6 by its /64, IPv4-mapped as IPv4', async (t) => {
  const cases: Array<[string, string]> = [
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3:8d3::/64'],
    ['2001:0DB8:85a3:08d3:ffff:ffff:ffff:ffff', '2001:db8:85a3:8d3::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:db8:1:2:3::', '2001:db8:1:2::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
    ['2001:db8:1:2::192.0.2.33', '2001:db8:1:2::/64']
  ]
  for (const [ip, key] of cases) t.equal(clientKey(ip), key, ip)
  t.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:bbbb::2'), 'two hosts of one /64 are one client')
  t.not(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'), 'the next /64 is another')
})
