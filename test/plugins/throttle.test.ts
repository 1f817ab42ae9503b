import t from 'tap'
import { loginGuard } from '../../plugins/throttle.js'

const minute = 60_000

t.test('one client against one account: 10 failures in 15 minutes, reset by a success', async (t) => {
  let time = 1_000_000
  const guard = loginGuard(() => time)
  for (let i = 0; i < 9; i++) guard.failed('ada', '10.0.0.1')
  t.doesNotThrow(() => guard.check('ada', '10.0.0.1'), '9 failures: still allowed')
  guard.succeeded('ada', '10.0.0.1')
  for (let i = 0; i < 9; i++) guard.failed('ada', '10.0.0.1')
  t.doesNotThrow(() => guard.check('ada', '10.0.0.1'), 'the success reset the count')
  guard.failed('ada', '10.0.0.1')
  t.throws(() => guard.check('ada', '10.0.0.1'), { statusCode: 429, code: 'throttled', headers: { 'retry-after': String(15 * 60) } })
  t.doesNotThrow(() => guard.check('ada', '10.0.0.2'), 'the same account from another client')
  t.doesNotThrow(() => guard.check('grace', '10.0.0.1'), 'another account from the same client')
  time += 5 * minute
  t.throws(() => guard.check('ada', '10.0.0.1'), { code: 'throttled', headers: { 'retry-after': String(10 * 60) } }, 'Retry-After counts down')
  time += 10 * minute
  t.doesNotThrow(() => guard.check('ada', '10.0.0.1'), 'allowed again once the window is over')
  guard.failed('ada', '10.0.0.1')
  t.doesNotThrow(() => guard.check('ada', '10.0.0.1'), 'a new window starts from one')
})

t.test('one account from every client: 100 failures an hour, then doubling waits, never a lockout', async (t) => {
  let time = 1_000_000
  const guard = loginGuard(() => time)
  for (let i = 0; i < 99; i++) guard.failed('ada', `10.0.${i}.1`)
  t.doesNotThrow(() => guard.check('ada', '192.0.2.1'))
  const waits: string[] = []
  for (let i = 0; i < 12; i++) {
    guard.failed('ada', '192.0.2.1')
    guard.succeeded('ada', '192.0.2.1')
    try {
      guard.check('ada', '192.0.2.2')
    } catch (error) {
      waits.push((error as { headers: Record<string, string> }).headers['retry-after']!)
    }
    time += Number(waits.at(-1)) * 1000
    t.doesNotThrow(() => guard.check('ada', '192.0.2.2'), 'allowed again after the wait')
  }
  t.same(waits, ['1', '2', '4', '8', '16', '32', '64', '128', '256', '512', '900', '900'], 'doubling, up to 15 minutes')
  time += 60 * minute
  guard.failed('ada', '192.0.2.3')
  t.doesNotThrow(() => guard.check('ada', '192.0.2.4'), 'a new hour starts from nothing')
})
