// IPv4 arithmetic for subnets and addresses. Pure.

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
    throw new Error(`bad IPv4 address ${ip}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { base: number; prefix: number; size: number } {
  const [ip, pfx] = cidr.split('/');
  const prefix = Number(pfx);
  const size = 2 ** (32 - prefix);
  const base = (ipToInt(ip!) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)) >>> 0;
  return { base, prefix, size };
}

export function subnetsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.base < y.base + y.size && y.base < x.base + x.size;
}

export function inSubnet(ip: string, cidr: string): boolean {
  const { base, size } = parseCidr(cidr);
  const n = ipToInt(ip);
  return n >= base && n < base + size;
}

/** The n-th host address of a subnet (n = 1 is the first usable address). */
export function hostAddress(cidr: string, n: number): string {
  const { base, size } = parseCidr(cidr);
  if (n < 1 || n >= size - 1) throw new Error(`host number ${n} does not fit in ${cidr}`);
  return intToIp(base + n);
}

/** The gateway docker gives a bridge network: the first host address. */
export const gatewayOf = (cidr: string): string => hostAddress(cidr, 1);

export const isNetworkAddress = (cidr: string): boolean => {
  const [ip] = cidr.split('/');
  return ipToInt(ip!) === parseCidr(cidr).base;
};
