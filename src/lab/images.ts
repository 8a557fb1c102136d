// Lab images, built offline: a Debian 12 base made with debootstrap and `docker import`, then one
// image per package set with `docker build` (lab/images/node/Dockerfile). Tags carry a content key,
// so an image is rebuilt only when its inputs change, and never pulled.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { RunError } from '../core/errors.ts';
import { run, dockerNothrow } from './docker.ts';
import type { NodeKind } from '../topology/schema.ts';

/** Bump when the way the base is made changes (invalidates the cached base). */
const BASE_RECIPE = 2;
export const SUITE = 'bookworm';
export const IMAGE_LABEL = 'wharf.image';

/** What every node has: a minimal Debian that boots systemd and answers ssh. */
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'sudo',
  'iproute2',
  'procps',
  // /etc/protocols and /etc/services: every Debian install has them (nft resolves icmp names there).
  'netbase',
];

/** Lab node kinds: the topology's kinds plus the lab's own bastion (management jump host). */
export type LabKind = NodeKind | 'bastion';

/** Extra packages per kind, installed at build time from the mirror. */
export const VARIANTS = {
  plain: [] as string[],
  net: ['nftables', 'iputils-ping'],
  sink: ['nodejs'],
} as const;
export type Variant = keyof typeof VARIANTS;

export const variantOf = (kind: LabKind): Variant =>
  kind === 'router' || kind === 'firewall' || kind === 'wan-client'
    ? 'net'
    : kind === 'notify-sink'
      ? 'sink'
      : 'plain';

export const IMAGE_DIR = new URL('../../lab/images/node/', import.meta.url).pathname;

export function debianMirror(): string {
  try {
    const text = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
    const m = /^URIs:\s*(\S+)/m.exec(text);
    if (m?.[1] && !m[1].includes('security')) return m[1];
  } catch {
    /* not Debian */
  }
  return 'http://deb.debian.org/debian';
}

const hash = (...parts: string[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 12);
};

function dirDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else
        h.update(relative(dir, p))
          .update(String(s.mode & 0o777))
          .update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

export const baseTag = (mirror = debianMirror()) =>
  `wharf-base:${hash(String(BASE_RECIPE), SUITE, mirror, BASE_PACKAGES.join(','))}`;

export function variantTag(variant: Variant, base = baseTag()): string {
  return `wharf-node:${variant}-${hash(base, dirDigest(IMAGE_DIR), VARIANTS[variant].join(','))}`;
}

export async function imageExists(tag: string): Promise<boolean> {
  return (await dockerNothrow(['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0;
}

type Log = (line: string) => void;

/** Lines worth showing from debootstrap (phases, not one line per package). */
const noisy = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring|Checking component) \S+( \S+)?$/;

async function buildBase(tag: string, log: Log): Promise<void> {
  const mirror = debianMirror();
  const dir = mkdtempSync(join(tmpdir(), 'wharf-base-'));
  log(`image ${tag}: debootstrap ${SUITE} (minbase + ${BASE_PACKAGES.join(' ')}) from ${mirror}`);
  try {
    const r = await run(
      'debootstrap',
      ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, SUITE, dir, mirror],
      {
        nothrow: true,
        timeoutMs: 900_000,
        onLine: (l) => {
          if (l.trim() && !noisy.test(l)) log(`  ${l}`);
        },
      },
    );
    if (r.code !== 0) {
      let detail = (r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n');
      try {
        detail +=
          '\n' +
          readFileSync(join(dir, 'debootstrap/debootstrap.log'), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        /* no log */
      }
      throw new RunError(`building ${tag}: debootstrap failed (exit ${r.code}):\n${detail}`);
    }
    // A fresh VM's sources: the same mirror, with updates and security (the install runbook runs apt).
    const security = mirror.replace(/\/debian\/?$/, '/debian-security');
    const sources =
      `deb ${mirror} ${SUITE} main\ndeb ${mirror} ${SUITE}-updates main\n` +
      (security !== mirror ? `deb ${security} ${SUITE}-security main\n` : '');
    await run('sh', [
      '-c',
      `printf '%s' "$1" > "$2"/etc/apt/sources.list && rm -rf "$2"/var/cache/apt/archives/*.deb`,
      'sh',
      sources,
      dir,
    ]);
    log(`image ${tag}: docker import`);
    await importDir(dir, tag);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function importDir(dir: string, tag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run('docker', ['import', '--change', `LABEL ${IMAGE_LABEL}=base`, '-', tag], { input: tar.stdout }).then(
      () => resolve(),
      reject,
    );
    tar.stderr.on('data', () => {});
  });
}

/** `docker build` of lab/images/node FROM the base with extra packages; fails with the build's text. */
export async function buildNodeImage(
  variant: string,
  packages: readonly string[],
  base: string,
  tag: string,
  log: Log,
): Promise<void> {
  const pkgs = packages.join(' ');
  log(`image ${tag}: docker build FROM ${base}${pkgs ? ` + ${pkgs}` : ''}`);
  const r = await run(
    'docker',
    [
      'build',
      '--force-rm',
      '--label',
      `${IMAGE_LABEL}=node`,
      '--build-arg',
      `BASE=${base}`,
      '--build-arg',
      `PACKAGES=${pkgs}`,
      '-t',
      tag,
      IMAGE_DIR,
    ],
    {
      nothrow: true,
      timeoutMs: 900_000,
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      onLine: (l) => {
        if (l.trim() && !/^(DEPRECATED|\s+(BuildKit|Install the buildx|Learn more))/.test(l))
          log(`  [${variant}] ${l}`);
      },
    },
  );
  if (r.code !== 0) {
    const detail = (r.stdout + '\n' + r.stderr).trim().split('\n').slice(-25).join('\n');
    throw new RunError(`building ${tag} failed (exit ${r.code}):\n${detail}`);
  }
}

/** Make sure every variant image the kinds need exists; returns kind-variant → tag. */
export async function ensureImages(kinds: LabKind[], log: Log = () => {}): Promise<Record<Variant, string>> {
  const base = baseTag();
  const variants = [...new Set(kinds.map(variantOf))];
  const tags = Object.fromEntries(
    (Object.keys(VARIANTS) as Variant[]).map((v) => [v, variantTag(v, base)]),
  ) as Record<Variant, string>;
  const missing: Variant[] = [];
  for (const v of variants) if (!(await imageExists(tags[v]))) missing.push(v);
  if (missing.length === 0) return tags;
  if (!(await imageExists(base))) await buildBase(base, log);
  // Builds are mostly waiting on the mirror: run them side by side.
  await Promise.all(missing.map((v) => buildNodeImage(v, VARIANTS[v], base, tags[v], log)));
  return tags;
}
