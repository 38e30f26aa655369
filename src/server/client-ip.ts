/**
 * Who is the client? The TCP peer, unless the peer is a trusted proxy: then the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy (RFC 7239 §7.4 reasoning: only the
 * hops we trust may speak for the hops before them).
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  readonly any: boolean;
  has(ip: string): boolean;
}

/** Strip the IPv4-mapped prefix that dual-stack sockets report. */
export function plainIp(ip: string): string {
  return ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && ip.includes('.') ? ip.slice(7) : ip;
}

export function compileTrustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const c of cidrs) {
    const [ip = '', bits] = c.split('/');
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  const any = cidrs.length > 0;
  return {
    any,
    has(ip) {
      if (!any) return false;
      const family = isIP(ip);
      return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** The client address, given the peer and the X-Forwarded-For value (undefined when absent). */
export function resolveClientIp(peer: string, xff: string | undefined, trusted: TrustedProxies): string {
  if (xff === undefined || !trusted.has(peer)) return peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = plainIp((hops[i] as string).trim());
    if (isIP(hop) === 0) return peer; // garbage in the chain: trust nothing beyond our peer
    if (!trusted.has(hop)) return hop;
  }
  return plainIp((hops[0] as string).trim());
}
