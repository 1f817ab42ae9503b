import { isIPv6 } from 'node:net'

/**
 * The key a client is counted under by the throttle: its IPv4 address, or the /64 network of its IPv6 address.
 * One IPv6 host is routinely given a whole /64, and could otherwise take a fresh address, with fresh counters,
 * for every request. An IPv4-mapped IPv6 address counts as its IPv4 address.
 */
export function clientKey (ip: string): string {
  const address = ip.split('%')[0]!
  if (!isIPv6(address)) return address
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return mapped[1]!
  const [head, tail] = address.split('::') as [string, string | undefined]
  const groups = (part: string | undefined) => part === undefined || part === '' ? [] : part.split(':')
  const before = groups(head)
  // An IPv4 tail (64:ff9b::1.2.3.4) takes two groups; it lies in the last 64 bits, which are dropped anyway.
  const after = groups(tail).flatMap((group) => group.includes('.') ? ['0', '0'] : [group])
  const all = tail === undefined ? before : [...before, ...Array(8 - before.length - after.length).fill('0'), ...after]
  return `${all.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`
}
