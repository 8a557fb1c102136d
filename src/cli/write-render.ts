// Writes rendered nodes to a folder: DIR/<node>/<target path> with the file modes applied, and
// DIR/manifest.json with what the files are for (owner, mode, checks, units, routes, sysctls).
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { InputError } from '../core/errors.ts';
import type { NodeRender, RenderedFile } from '../render/types.ts';

export interface ManifestFile {
  path: string;
  /** Octal, e.g. "0644". */
  mode: string;
  owner: string;
  group: string;
  bytes: number;
  sha256: string;
  secret: boolean;
  check?: { name: string; argv: string[] };
  notify?: string[];
}

export interface RenderManifest {
  topologyFile: string;
  inventoryFile: string | null;
  out: string;
  nodes: Record<string, Omit<NodeRender, 'files' | 'node'> & { dir: string; files: ManifestFile[] }>;
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

function checkTarget(node: string, f: RenderedFile): void {
  const ok = f.path.startsWith('/') && posix.normalize(f.path) === f.path && !f.path.endsWith('/');
  if (!ok) {
    throw new InputError(
      `render: node ${node}: target path ${JSON.stringify(f.path)} is not a clean absolute path`,
    );
  }
}

export function writeRender(
  outDir: string,
  renders: Record<string, NodeRender>,
  inputs: { topologyFile: string; inventoryFile: string | null },
): RenderManifest {
  const out = resolve(outDir);
  const manifest: RenderManifest = { ...inputs, out, nodes: {} };
  for (const [node, r] of Object.entries(renders)) {
    r.files.forEach((f) => checkTarget(node, f));
    const dir = join(out, node);
    // Only this node's folder is replaced: a stale file from an older render must not survive.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files: ManifestFile[] = [];
    for (const f of r.files) {
      const target = join(dir, f.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, f.content, { mode: f.mode });
      chmodSync(target, f.mode); // writeFile's mode goes through the umask
      files.push({
        path: f.path,
        mode: octal(f.mode),
        owner: f.owner,
        group: f.group,
        bytes: Buffer.byteLength(f.content),
        sha256: createHash('sha256').update(f.content).digest('hex'),
        secret: f.secret ?? false,
        ...(f.check ? { check: { name: f.check.name, argv: f.check.argv } } : {}),
        ...(f.notify ? { notify: f.notify } : {}),
      });
    }
    const { files: _files, node: _node, ...rest } = r; // units, routes, sysctls, packages…
    manifest.nodes[node] = { ...rest, dir, files };
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export function manifestLines(m: RenderManifest): string[] {
  const lines: string[] = [];
  for (const [node, n] of Object.entries(m.nodes)) {
    lines.push(`${node} (${n.files.length} file${n.files.length === 1 ? '' : 's'}) → ${n.dir}`);
    for (const f of n.files) {
      lines.push(
        `  ${f.mode} ${`${f.owner}:${f.group}`.padEnd(18)} ${f.path}${f.check ? `  [${f.check.name}]` : ''}`,
      );
    }
  }
  lines.push(`manifest: ${join(m.out, 'manifest.json')}`);
  return lines;
}
