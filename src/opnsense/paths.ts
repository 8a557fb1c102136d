// API paths and the box's version. OPNsense's router (src/opnsense/mvc/app/library/OPNsense/Mvc/
// Router.php, parsePath) turns each path element's snake_case into the controller's camelCase
// (`add_rule` → addRuleAction, `d_nat` → DNatController), so newer releases answer both spellings;
// older ones only camelCase. wharf writes the style the inventory asks for. Pure.
import type { CommandStyle } from './types.ts';

/** `searchRule` → `search_rule` (snake) or unchanged (camel). */
export function command(style: CommandStyle, camel: string): string {
  return style === 'snake' ? camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : camel;
}

export const apiPath = (
  style: CommandStyle,
  module: string,
  controller: string,
  cmd: string,
  ...params: string[]
): string => ['/api', module, controller, command(style, cmd), ...params.map(encodeURIComponent)].join('/');

export interface Version {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

/** `26.1`, `26.1.4`, `25.7.8_2` → numbers; null when unreadable. */
export function parseVersion(text: string): Version | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), text: text.trim() };
}

export const atLeast = (v: Version, major: number, minor: number): boolean =>
  v.major > major || (v.major === major && v.minor >= minor);

/** Port forwards have an API (/api/firewall/d_nat) since 26.1. */
export const hasDNatApi = (v: Version): boolean => atLeast(v, 26, 1);

/**
 * The filter's savepoint / apply/{revision} / cancelRollback safety net: removed in 26.7
 * (core PR #10411), and on 26.1.5 it fails to roll back (core issue #10721).
 */
export function savepointSupport(v: Version): 'yes' | 'broken' | 'removed' {
  if (atLeast(v, 26, 7)) return 'removed';
  if (v.major === 26 && v.minor === 1 && v.patch === 5) return 'broken';
  return 'yes';
}

/** The product version from /api/core/firmware/status: top level (≤ 25.x) or under `product` (26.x). */
export function versionFromStatus(status: unknown): string | null {
  if (!status || typeof status !== 'object') return null;
  const s = status as Record<string, unknown>;
  const product = s.product as Record<string, unknown> | undefined;
  const v = product?.product_version ?? s.product_version;
  return typeof v === 'string' && v ? v : null;
}
