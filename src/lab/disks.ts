// Size-limited upload filesystems for the SFTP nodes (opt-in: WHARF_LAB_UPLOAD_DISK=2GiB at
// `lab up`): a sparse ext4 image per node, loop-mounted on the host under the lab's state folder
// and bind-mounted at the node's chroot base, so the node's uploads live on a disk that can fill
// up (the drill's disk-full fault) and that outlives a container kill or restart, as a VM's disk
// does. Without the variable the uploads live on the container's own filesystem, as before.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RunError, InputError } from '../core/errors.ts';
import { $ } from '../exec/index.ts';
import { stateDir } from './state.ts';

export const UPLOAD_DISK_ENV = 'WHARF_LAB_UPLOAD_DISK';

/** WHARF_LAB_UPLOAD_DISK (e.g. 2GiB, 512MiB) in bytes; undefined when unset. */
export function uploadDiskBytes(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env[UPLOAD_DISK_ENV];
  if (v === undefined || v === '') return undefined;
  const m = /^(\d+)\s*(MiB|GiB)$/.exec(v.trim());
  const bytes = m ? Number(m[1]) * (m[2] === 'GiB' ? 1024 ** 3 : 1024 ** 2) : NaN;
  if (!Number.isFinite(bytes) || bytes < 64 * 1024 ** 2 || bytes > 64 * 1024 ** 3)
    throw new InputError(`${UPLOAD_DISK_ENV}: expected 64MiB…64GiB like 2GiB or 512MiB, got "${v}"`);
  return bytes;
}

const disksDir = (stack: string) => join(stateDir(stack), 'disks');
/** The host folder a node's upload disk is mounted on. */
export const uploadDiskDir = (stack: string, node: string) => join(disksDir(stack), node);

async function mounted(dir: string): Promise<boolean> {
  return (await $({ nothrow: true, timeout: 10_000 })`mountpoint -q ${dir}`).exitCode === 0;
}

/** Make (once) and mount the node's disk image; idempotent (a mounted disk is left as it is). */
export async function ensureUploadDisk(stack: string, node: string, bytes: number): Promise<string> {
  const dir = uploadDiskDir(stack, node);
  const img = `${dir}.img`;
  mkdirSync(dir, { recursive: true });
  if (existsSync(img) && statSync(img).size !== bytes) {
    if (statSync(img).size > bytes)
      throw new InputError(
        `${UPLOAD_DISK_ENV}: ${node}'s upload disk is ${statSync(img).size} bytes; it can grow, not shrink (lab down first)`,
      );
    // grow it (online when mounted): the image, its loop device, the filesystem
    await $({ timeout: 60_000 })`truncate -s ${bytes} ${img}`;
    const dev = /^(\/dev\/loop\d+):/.exec(
      (await $({ nothrow: true, timeout: 10_000 })`losetup -j ${img}`).stdout,
    )?.[1];
    if (dev) {
      await $({ timeout: 60_000 })`losetup -c ${dev}`;
      await $({ timeout: 300_000 })`resize2fs ${dev}`;
    }
  }
  if (await mounted(dir)) return dir;
  if (!existsSync(img)) {
    await $({ timeout: 60_000 })`truncate -s ${bytes} ${img}`;
    await $({ timeout: 120_000 })`mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1 ${img}`;
  }
  const r = await $({ nothrow: true, timeout: 60_000 })`mount -o loop ${img} ${dir}`;
  if (r.exitCode !== 0)
    throw new RunError(`${node}: cannot loop-mount its upload disk ${img}: ${r.stderr.trim()}`);
  // an empty ext4 has lost+found; the chroot base holds the users' folders only
  await $({ nothrow: true, timeout: 10_000 })`rmdir ${join(dir, 'lost+found')}`;
  return dir;
}

/** Unmount and delete every upload disk of a lab (before its state folder goes). */
export async function releaseUploadDisks(
  stack: string,
  log: (l: string) => void = () => {},
): Promise<number> {
  const base = disksDir(stack);
  if (!existsSync(base)) return 0;
  let n = 0;
  for (const e of readdirSync(base, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const dir = join(base, e.name);
    if (await mounted(dir)) {
      let r = await $({ nothrow: true, timeout: 30_000 })`umount ${dir}`;
      if (r.exitCode !== 0) r = await $({ nothrow: true, timeout: 30_000 })`umount -l ${dir}`;
      if (r.exitCode !== 0) throw new RunError(`cannot unmount the upload disk ${dir}: ${r.stderr.trim()}`);
      log(`upload disk of ${e.name} unmounted`);
      n++;
    }
  }
  rmSync(base, { recursive: true, force: true });
  return n;
}
