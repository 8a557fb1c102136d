// A tar archive (ustar) built in memory: what the Engine API takes for an archive upload into a
// container (putArchive) and for a build context. Pure; entries are owned by root (uid/gid 0),
// parent directories are written before their children.
export interface TarEntry {
  /** Path inside the archive, without a leading slash (`etc/ssh/sshd_config`). */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  /** A file's content. */
  content?: string | Buffer;
  /** A symlink's target. */
  target?: string;
}

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** ustar splits a long path into prefix (≤ 155) + '/' + name (≤ 100). */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function header(e: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const p = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const { name, prefix } = splitPath(p);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode & 0o7777, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder
  h.write(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156, 1, 'ascii');
  if (e.type === 'symlink') h.write(e.target ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 8, 'ascii');
  return h;
}

/**
 * The archive: entries in the given order, then two zero blocks. `mtime` (seconds) defaults to 0,
 * so the same entries make the same bytes (a build context); uploads into a node pass the time.
 */
export function tarArchive(entries: TarEntry[], opts: { mtime?: number } = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.path.startsWith('/') || e.path.split('/').includes('..'))
      throw new Error(`tar: path must be relative and stay inside: ${e.path}`);
    const body = e.type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    parts.push(header(e, body.length, mtime), body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

/**
 * Absolute file paths (with content and mode) → entries. A parent directory gets an entry only
 * when `dirMode` gives it a mode (default: /root/.ssh 0700): the engine creates a missing parent
 * with 0755 and leaves an existing one as it is — an entry would reset its mode (/tmp's 1777).
 */
export function filesToEntries(
  files: { path: string; content: string | Buffer; mode: number }[],
  links: { path: string; target: string }[] = [],
  dirMode: (dir: string) => number | null = defaultDirMode,
): TarEntry[] {
  const out: TarEntry[] = [];
  const dirs = new Set<string>();
  const parents = (abs: string) => {
    const parts = abs.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = '/' + parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      const mode = dirMode(d);
      if (mode !== null) out.push({ path: d.slice(1), type: 'dir', mode });
    }
  };
  for (const f of files) {
    parents(f.path);
    out.push({ path: f.path.replace(/^\/+/, ''), type: 'file', mode: f.mode, content: f.content });
  }
  for (const l of links) {
    parents(l.path);
    out.push({ path: l.path.replace(/^\/+/, ''), type: 'symlink', mode: 0o777, target: l.target });
  }
  return out;
}

/** sshd refuses keys under a group/other-writable ~/.ssh: the lab makes root's 0700. */
export const defaultDirMode = (dir: string): number | null => (dir === '/root/.ssh' ? 0o700 : null);
