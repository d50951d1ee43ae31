import { isIPv4, isIPv6 } from 'node:net'

/** The longest key an address counts under: an X-Forwarded-For entry is the client's own text. */
const MAX_KEY_CHARS = 64

/**
 * The key the login and sign-up limits count a client address under.
 * - An IPv6 address counts as its /64 (or, with `ipv6Prefix` 56, its /56): one host is
 *   usually given a whole /64 (SLAAC, privacy addresses) and a home line a /56, so counting
 *   single addresses would let one client pick a new address for every try.
 * - An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack socket shows an IPv4
 *   client) counts as the IPv4 address.
 * - Brackets, a port or a zone that a proxy may add are dropped.
 * - Anything that is not an address counts as given, lower-cased and cut to MAX_KEY_CHARS.
 */
export function limitAddress(raw: string, ipv6Prefix: 64 | 56 = 64): string {
  let a = raw.trim()
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(a)
  if (bracketed) a = bracketed[1]!
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'))
  const zone = a.indexOf('%')
  if (zone > 0) a = a.slice(0, zone)
  if (isIPv4(a)) return a
  if (!isIPv6(a)) return a.toLowerCase().slice(0, MAX_KEY_CHARS)
  const g = ipv6Groups(a)
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`
  }
  if (ipv6Prefix === 56) return `${g.slice(0, 3).map((x) => x.toString(16)).join(':')}:${(g[3]! & 0xff00).toString(16)}::/56`
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups(address: string): number[] {
  let s = address.toLowerCase()
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s)
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number]
    s = `${s.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`
  }
  const gap = s.indexOf('::')
  const head = gap < 0 ? s.split(':') : s.slice(0, gap) ? s.slice(0, gap).split(':') : []
  const tail = gap < 0 ? [] : s.slice(gap + 2) ? s.slice(gap + 2).split(':') : []
  const zeros = new Array<string>(8 - head.length - tail.length).fill('0')
  return [...head, ...zeros, ...tail].map((x) => parseInt(x, 16))
}
