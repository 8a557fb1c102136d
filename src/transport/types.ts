// The transport interface: everything the runbook engine does to a host goes through it.
import type { CheckCommand } from '../render/types.ts';

export interface ExecOptions {
  /** Bytes for the command's stdin. */
  input?: string | Buffer;
  /** Kill the command after this long (default: the transport's commandTimeoutMs). */
  timeoutMs?: number;
  /** Run privileged (sudo -n when the host needs it; no-op for root). Default true. */
  sudo?: boolean;
  /** The command line and input contain secrets: never show them in errors or logs. */
  secret?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
  /** Raw stdout, for binary content. */
  stdoutBuffer: Buffer;
}

export interface FileStat {
  /** Permission bits, e.g. 0o644. */
  mode: number;
  owner: string;
  group: string;
  size: number;
  type: 'file' | 'directory' | 'symlink' | 'other';
}

export interface WriteOptions {
  mode: number;
  owner: string;
  group: string;
  /** Validate the temp file before it replaces the target; `{}` is the temp path. */
  check?: CheckCommand;
  /** Content is secret: errors never include it. */
  secret?: boolean;
}

export interface Transport {
  /** Name the engine and messages use (the inventory node name). */
  readonly host: string;
  /** Runs a command; resolves with its exit code (no throw on non-zero), throws on timeout/transport failure. */
  exec(cmd: string | readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** File content, or null when the path does not exist. */
  readFile(path: string): Promise<Buffer | null>;
  stat(path: string): Promise<FileStat | null>;
  /** temp file in the same dir → owner/mode → check → rename. Throws CheckFailed if the check fails. */
  writeFileAtomic(path: string, content: string | Buffer, opts: WriteOptions): Promise<void>;
  close(): Promise<void>;
}

/** The transport could not run the command: connection refused, auth failed, timeout. */
export class TransportError extends Error {
  constructor(
    readonly host: string,
    message: string,
    readonly stderr = '',
  ) {
    super(`${host}: ${message}`);
    this.name = 'TransportError';
  }
}

/**
 * A command ran and exited non-zero where success was required (`host.$` without `nothrow`). The
 * message names the host, the command (secrets masked) and what it wrote to stderr.
 */
export class CommandFailed extends TransportError {
  constructor(
    host: string,
    /** The command as it may be shown (masked, or «secret command»). */
    readonly command: string,
    readonly result: ExecResult,
  ) {
    const said = (result.stderr || result.stdout).trim();
    super(
      host,
      `\`${headOf(command)}\` failed (exit ${result.code})${said ? `: ${tailOf(said)}` : ''}`,
      result.stderr,
    );
    this.name = 'CommandFailed';
  }
  get code(): number {
    return this.result.code;
  }
}

/** A script's first line, shortened: enough to recognise it in a message. */
const headOf = (cmd: string): string => {
  const first = cmd.split('\n')[0]!;
  return first.length > 160 || first !== cmd ? `${first.slice(0, 160)} …` : first;
};
/** The end of a long stderr (where the error usually is). */
const tailOf = (text: string): string => (text.length > 2000 ? `… ${text.slice(-2000)}` : text);

/** A candidate file was rejected by its checker; the target was left as it was. */
export class CheckFailed extends Error {
  constructor(
    readonly host: string,
    readonly path: string,
    readonly checker: string,
    readonly output: string,
  ) {
    super(`${host}: ${checker} rejected the new ${path} (old file kept):\n${output.trimEnd()}`);
    this.name = 'CheckFailed';
  }
}
