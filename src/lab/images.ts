// Lab images, built offline: a Debian 12 base made with debootstrap and imported into the engine
// (Engine API: images/create fromSrc), then one image per package set built from
// lab/images/node/Dockerfile (Engine API: build of a tar context). Tags carry a content key, so an
// image is rebuilt only when its inputs change, and never pulled.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { $ } from '../exec/index.ts';
import { RunError } from '../core/errors.ts';
import { dockerCall, dockerCallOr404, followProgress, type ProgressMessage } from './docker.ts';
import { tarArchive, type TarEntry } from './tar.ts';
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
  // the firewall node of a `firewall.kind: opnsense` lab: nftables plus the OPNsense API emulation
  // (a bundled Node program) and openssl for its self-signed certificate
  opnsense: ['nftables', 'iputils-ping', 'nodejs', 'openssl'],
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
  return (await dockerCallOr404(`image inspect ${tag}`, (d) => d.getImage(tag).inspect())) !== null;
}

type Log = (line: string) => void;

/** Lines worth showing from debootstrap (phases, not one line per package). */
const noisy = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring|Checking component) \S+( \S+)?$/;

/** Image builds and imports wait on the mirror: their own, longer deadline. */
const BUILD_TIMEOUT_MS = 900_000;

/** Each complete line of a stream, to `onLine`. */
function eachLine(stream: NodeJS.ReadableStream, onLine: (l: string) => void): void {
  let partial = '';
  stream.on('data', (d: Buffer | string) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) onLine(l);
  });
  stream.on('end', () => {
    if (partial) onLine(partial);
  });
}

async function buildBase(tag: string, log: Log): Promise<void> {
  const mirror = debianMirror();
  const dir = mkdtempSync(join(tmpdir(), 'wharf-base-'));
  log(`image ${tag}: debootstrap ${SUITE} (minbase + ${BASE_PACKAGES.join(' ')}) from ${mirror}`);
  try {
    const p = $({
      nothrow: true,
      quiet: true,
      timeout: BUILD_TIMEOUT_MS,
    })`debootstrap --variant=minbase ${`--include=${BASE_PACKAGES.join(',')}`} ${SUITE} ${dir} ${mirror}`;
    eachLine(p.stdout, (l) => {
      if (l.trim() && !noisy.test(l)) log(`  ${l}`);
    });
    const r = await p;
    if (r.exitCode !== 0) {
      let detail = (r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n');
      try {
        detail +=
          '\n' +
          readFileSync(join(dir, 'debootstrap/debootstrap.log'), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        /* no log */
      }
      throw new RunError(`building ${tag}: debootstrap failed (exit ${r.exitCode ?? r.signal}):\n${detail}`);
    }
    // A fresh VM's sources: the same mirror, with updates and security (the install runbook runs apt).
    const security = mirror.replace(/\/debian\/?$/, '/debian-security');
    writeFileSync(
      join(dir, 'etc/apt/sources.list'),
      `deb ${mirror} ${SUITE} main\ndeb ${mirror} ${SUITE}-updates main\n` +
        (security !== mirror ? `deb ${security} ${SUITE}-security main\n` : ''),
    );
    const archives = join(dir, 'var/cache/apt/archives');
    for (const f of readdirSync(archives)) if (f.endsWith('.deb')) rmSync(join(archives, f));
    log(`image ${tag}: import into the engine`);
    await importDir(dir, tag);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rootfs as a tar (the real tar: device nodes, owners, hard links) → images/create fromSrc. */
async function importDir(dir: string, tag: string): Promise<void> {
  const [repo, version] = tag.split(':');
  const tar = $({ quiet: true, timeout: BUILD_TIMEOUT_MS })`tar -C ${dir} --numeric-owner -cf - .`;
  tar.catch(() => {}); // its failure shows as a short import, reported below
  const res = await dockerCall(
    `import ${tag}`,
    async (d, abortSignal) => {
      const stream = await d.importImage(
        tar.stdout as NodeJS.ReadableStream,
        {
          repo,
          tag: version,
          changes: [`LABEL ${IMAGE_LABEL}=base`],
          abortSignal,
        } as object,
      );
      return followProgress(d, stream, () => {});
    },
    { timeoutMs: BUILD_TIMEOUT_MS },
  );
  const t = await tar.nothrow();
  if (t.exitCode !== 0) throw new RunError(`building ${tag}: tar of the rootfs failed: ${t.stderr.trim()}`);
  if (res.error) throw new RunError(`building ${tag}: import failed: ${res.error}`);
  if (!(await imageExists(tag)))
    throw new RunError(`building ${tag}: the engine has no such image after the import`);
}

/** lab/images/node as a build context (modes kept, owned by root). */
export function buildContext(dir: string = IMAGE_DIR): Buffer {
  const entries: TarEntry[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const s = statSync(p);
      const rel = relative(dir, p);
      if (s.isDirectory()) {
        entries.push({ path: rel, type: 'dir', mode: s.mode & 0o7777 });
        walk(p);
      } else entries.push({ path: rel, type: 'file', mode: s.mode & 0o7777, content: readFileSync(p) });
    }
  };
  walk(dir);
  return tarArchive(entries);
}

/**
 * Build lab/images/node FROM the base with extra packages. A failed build does not make the Engine
 * API call fail: the error is in the progress stream, and the build's own last lines are the message.
 */
export async function buildNodeImage(
  variant: string,
  packages: readonly string[],
  base: string,
  tag: string,
  log: Log,
): Promise<void> {
  const pkgs = packages.join(' ');
  log(`image ${tag}: build FROM ${base}${pkgs ? ` + ${pkgs}` : ''}`);
  const lines: string[] = [];
  const onMessage = (m: ProgressMessage) => {
    const text = m.stream ?? m.status ?? (m.error ? `ERROR: ${m.error}` : '');
    for (const l of text.split('\n')) {
      if (!l.trim()) continue;
      lines.push(l);
      log(`  [${variant}] ${l}`);
    }
  };
  const res = await dockerCall(
    `build -t ${tag}`,
    async (d, abortSignal) => {
      const stream = await d.buildImage(Readable.from([buildContext()]), {
        t: tag,
        forcerm: true,
        labels: { [IMAGE_LABEL]: 'node' },
        buildargs: { BASE: base, PACKAGES: pkgs },
        abortSignal,
      });
      return followProgress(d, stream, onMessage);
    },
    { timeoutMs: BUILD_TIMEOUT_MS },
  );
  if (res.error) {
    const detail = lines.slice(-25).join('\n');
    throw new RunError(`building ${tag} failed: ${res.error}\n${detail}`);
  }
}

/** Make sure every variant image the kinds (and `extra`) need exists; returns variant → tag. */
export async function ensureImages(
  kinds: LabKind[],
  log: Log = () => {},
  extra: Variant[] = [],
): Promise<Record<Variant, string>> {
  const base = baseTag();
  const variants = [...new Set([...kinds.map(variantOf), ...extra])];
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
