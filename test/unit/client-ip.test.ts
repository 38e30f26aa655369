import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTrustedProxies, plainIp, resolveClientIp } from '../../src/server/client-ip.js';

const trusted = compileTrustedProxies(['10.0.0.0/8', '192.168.1.1', '::1', 'fd00::/8']);
const nobody = compileTrustedProxies([]);

describe('compileTrustedProxies', () => {
  /** [address, trusted?] */
  const table: readonly (readonly [string, boolean])[] = [
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['11.0.0.1', false],
    ['192.168.1.1', true],
    ['192.168.1.2', false],
    ['::1', true],
    ['::2', false],
    ['fd00::1', true],
    ['fe80::1', false],
    ['::ffff:10.1.2.3', true], // IPv4-mapped IPv6 matches the IPv4 range
    ['::ffff:11.1.2.3', false],
    ['', false],
    ['not-an-ip', false],
    ['10.0.0.1:8080', false],
  ];
  for (const [ip, want] of table) it(`${JSON.stringify(ip)} → ${want}`, () => assert.equal(trusted.has(ip), want));

  it('an empty list trusts nobody', () => {
    assert.equal(nobody.any, false);
    assert.equal(nobody.has('127.0.0.1'), false);
    assert.equal(trusted.any, true);
  });
});

describe('plainIp', () => {
  it('strips the IPv4-mapped prefix, in any case', () => {
    assert.equal(plainIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(plainIp('::FFFF:127.0.0.1'), '127.0.0.1');
    assert.equal(plainIp('127.0.0.1'), '127.0.0.1');
    assert.equal(plainIp('::1'), '::1');
    assert.equal(plainIp('::ffff:7f00:1'), '::ffff:7f00:1', 'the hex form has no dot and is left alone');
  });
});

describe('resolveClientIp', () => {
  /** [what, peer, X-Forwarded-For, expected client] */
  const table: readonly (readonly [string, string, string | undefined, string])[] = [
    ['no header: the peer', '10.0.0.1', undefined, '10.0.0.1'],
    ['untrusted peer: its header is ignored', '203.0.113.9', '1.2.3.4', '203.0.113.9'],
    ['untrusted peer in no list at all', '203.0.113.9', '1.2.3.4', '203.0.113.9'],
    ['one trusted hop', '10.0.0.1', '1.2.3.4', '1.2.3.4'],
    ['right-most untrusted entry wins', '10.0.0.1', '6.6.6.6, 1.2.3.4, 10.0.0.2', '1.2.3.4'],
    ['a client cannot forge its way past the first untrusted hop', '10.0.0.1', '10.0.0.9, 1.2.3.4', '1.2.3.4'],
    ['chain of trusted proxies', '10.0.0.1', '1.2.3.4, 192.168.1.1, 10.0.0.2', '1.2.3.4'],
    ['all hops trusted: the left-most', '10.0.0.1', '10.0.0.3, 10.0.0.2', '10.0.0.3'],
    ['whitespace around entries', '10.0.0.1', '  1.2.3.4 ,10.0.0.2 ', '1.2.3.4'],
    ['IPv6 client', '10.0.0.1', '2001:db8::1', '2001:db8::1'],
    ['IPv6 trusted peer', '::1', '1.2.3.4', '1.2.3.4'],
    ['IPv4-mapped client is reported as IPv4', '10.0.0.1', '::ffff:1.2.3.4', '1.2.3.4'],
    ['IPv4-mapped client in upper case', '10.0.0.1', '::FFFF:1.2.3.4', '1.2.3.4'],
    ['IPv4-mapped trusted hop is skipped', '10.0.0.1', '1.2.3.4, ::ffff:10.0.0.2', '1.2.3.4'],
    ['garbage: trust nothing beyond the peer', '10.0.0.1', 'unknown', '10.0.0.1'],
    ['garbage after a trusted hop', '10.0.0.1', 'evil, 10.0.0.2', '10.0.0.1'],
    ['garbage left of the client is never reached', '10.0.0.1', 'evil, 1.2.3.4', '1.2.3.4'],
    ['an entry with a port is garbage', '10.0.0.1', '1.2.3.4:5678', '10.0.0.1'],
    ['a bracketed IPv6 entry is garbage', '10.0.0.1', '[2001:db8::1]', '10.0.0.1'],
    ['empty entries are garbage', '10.0.0.1', '1.2.3.4,,10.0.0.2', '10.0.0.1'],
    ['an empty header is garbage', '10.0.0.1', '', '10.0.0.1'],
    ['an obfuscated RFC 7239 identifier is garbage', '10.0.0.1', '_hidden', '10.0.0.1'],
    ['a host name is garbage', '10.0.0.1', 'client.example.com', '10.0.0.1'],
  ];
  for (const [what, peer, xff, want] of table) it(what, () => assert.equal(resolveClientIp(peer, xff, trusted), want));

  it('with no trusted proxies, always the peer', () => {
    assert.equal(resolveClientIp('10.0.0.1', '1.2.3.4', nobody), '10.0.0.1');
  });
});
