// File operations written once, as small POSIX shell scripts over `exec`, so the SSH and the
// local transport behave the same. Each operation is ONE round trip.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { hostShell, type HostShell } from '../exec/template.ts';
import { mask } from './mask.ts';
import { shJoin, shQuote } from '../exec/index.ts';
import {
  CheckFailed,
  CommandFailed,
  TransportError,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Transport,
  type WriteOptions,
} from './types.ts';
import type { CheckCommand } from '../render/types.ts';

const ABSENT = 44;
const CHECK_FAILED = 45;
const WRITE_FAILED = 46;

/** The check's argv with every `{}` replaced by the candidate's path. */
export function checkArgv(check: CheckCommand, path: string): string[] {
  return check.argv.map((a) => a.split('{}').join(path));
}

/** Temp file name next to the target: same filesystem, so the final rename is atomic. */
export function tempPathFor(path: string): string {
  return posix.join(
    posix.dirname(path),
    `.wharf-tmp.${posix.basename(path)}.${randomBytes(4).toString('hex')}`,
  );
}

/** `mode` as the 4-digit octal string chmod takes. */
export function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

export function parseStat(line: string): FileStat {
  const [mode, owner, group, size, type] = line.trim().split('|');
  return {
    mode: parseInt(mode ?? '0', 8),
    owner: owner ?? '',
    group: group ?? '',
    size: Number(size ?? 0),
    type: type?.startsWith('regular')
      ? 'file'
      : type === 'directory'
        ? 'directory'
        : type === 'symbolic link'
          ? 'symlink'
          : 'other',
  };
}

export const STAT_FORMAT = '%a|%U|%G|%s|%F';

/**
 * `host.$` for any Transport: the transport's own when it has one (SSH, local: secrets masked with
 * its list), else one over its `exec` (failures name the command as written).
 */
export function shell(t: Transport): HostShell {
  if (t instanceof ShellTransport) return t.$;
  return hostShell(
    (line, o) => t.exec(line, o),
    (line, o, r) => new CommandFailed(t.host, o.secret ? '«secret command»' : line, r),
  );
}

export abstract class ShellTransport implements Transport {
  abstract readonly host: string;
  abstract readonly options: { secrets?: string[] };
  abstract exec(cmd: string | readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  abstract close(): Promise<void>;

  /**
   * zx-style commands on this host: `await host.$\`systemctl reload ${unit}\`` (values quoted,
   * arrays as several arguments); `host.$({nothrow, input, timeoutMs, sudo, secret})\`…\``.
   * A non-zero exit throws CommandFailed (host, masked command, stderr) unless `nothrow`.
   */
  get $(): HostShell {
    return hostShell(
      (line, o) => this.exec(line, o),
      (line, o, r) => new CommandFailed(this.host, this.shown(line, o.secret), r),
    );
  }

  /** A command line as it may appear in errors and logs. */
  protected shown(line: string, secret?: boolean): string {
    return secret ? '«secret command»' : mask(line, this.options.secrets ?? []);
  }

  async readFile(path: string): Promise<Buffer | null> {
    const p = shQuote(path);
    const r = await this.exec(
      `if [ -e ${p} ] || [ -L ${p} ]; then exec cat -- ${p}; else exit ${ABSENT}; fi`,
    );
    if (r.code === ABSENT) return null;
    if (r.code !== 0)
      throw new TransportError(this.host, `cannot read ${path}: ${r.stderr.trim()}`, r.stderr);
    return r.stdoutBuffer;
  }

  async stat(path: string): Promise<FileStat | null> {
    const p = shQuote(path);
    const r = await this.exec(
      `if [ -e ${p} ] || [ -L ${p} ]; then exec stat -c ${shQuote(STAT_FORMAT)} -- ${p}; else exit ${ABSENT}; fi`,
    );
    if (r.code === ABSENT) return null;
    if (r.code !== 0)
      throw new TransportError(this.host, `cannot stat ${path}: ${r.stderr.trim()}`, r.stderr);
    return parseStat(r.stdout);
  }

  async writeFileAtomic(path: string, content: string | Buffer, opts: WriteOptions): Promise<void> {
    const tmp = tempPathFor(path);
    const [t, p] = [shQuote(tmp), shQuote(path)];
    const check = opts.check ? shJoin(checkArgv(opts.check, tmp)) : 'true';
    const script = [
      `mkdir -p -- ${shQuote(posix.dirname(path))} || exit ${WRITE_FAILED}`,
      `(umask 077 && cat > ${t}) && chown -- ${shQuote(`${opts.owner}:${opts.group}`)} ${t} && chmod -- ${octal(opts.mode)} ${t} || { rm -f -- ${t}; exit ${WRITE_FAILED}; }`,
      `if ! ( ${check} ) 1>&2; then rm -f -- ${t}; exit ${CHECK_FAILED}; fi`,
      `mv -f -- ${t} ${p} || { rm -f -- ${t}; exit ${WRITE_FAILED}; }`,
    ].join('\n');
    const r = await this.exec(script, { input: content, secret: opts.secret });
    if (r.code === 0) return;
    if (r.code === CHECK_FAILED)
      throw new CheckFailed(this.host, path, opts.check?.name ?? 'check', r.stderr.split(tmp).join(path));
    throw new TransportError(
      this.host,
      `cannot write ${path} (exit ${r.code}): ${r.stderr.trim()}`,
      r.stderr,
    );
  }
}
