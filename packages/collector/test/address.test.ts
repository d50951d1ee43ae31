import { describe, expect, it } from 'vitest'
import { limitAddress } from '../src/auth/address.js'

describe('limitAddress: the key login and sign-up limits count a client address under', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1:8080 ', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::9]:443', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::9]', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:db8::192.0.2.1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    // how uWebSockets shows an IPv4 client on a dual-stack socket
    ['0000:0000:0000:0000:0000:ffff:c000:0201', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['unknown', 'unknown'],
    ['Not-An-Address', 'not-an-address'],
  ])('%j → %j', (raw, key) => {
    expect(limitAddress(raw)).toBe(key)
  })

  it('two addresses in one /64 share a key; the next /64 does not', () => {
    expect(limitAddress('2001:db8:7:7::1')).toBe(limitAddress('2001:db8:7:7:abcd:1:2:3'))
    expect(limitAddress('2001:db8:7:7::1')).not.toBe(limitAddress('2001:db8:7:8::1'))
  })

  it('with a /56: the first 56 bits, the rest of the fourth group dropped', () => {
    expect(limitAddress('2001:db8:7:7::1', 56)).toBe('2001:db8:7:0::/56')
    expect(limitAddress('2001:db8:7:ff:1:2:3:4', 56)).toBe('2001:db8:7:0::/56')
    expect(limitAddress('2001:db8:7:1ff::1', 56)).toBe('2001:db8:7:100::/56')
    // IPv4 and text are as without it
    expect(limitAddress('192.0.2.1', 56)).toBe('192.0.2.1')
    expect(limitAddress('::ffff:192.0.2.1', 56)).toBe('192.0.2.1')
  })

  it('bounds what it keeps of text that is not an address', () => {
    expect(limitAddress('x'.repeat(5000))).toHaveLength(64)
  })
})
