// Progress: on a terminal, one live line per host (rewritten in place with ANSI codes); in CI or
// when piped, plain lines. Everything shown goes through `mask`.
import { mask } from '../transport/mask.ts';

export interface Reporter {
  /** A host is doing a step now. */
  step(host: string, text: string): void;
  /** A host is finished (ok or failed). */
  done(host: string, ok: boolean, text: string): void;
  /** A plain message (plan, warnings, results). */
  line(text: string): void;
  close(): void;
}

interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
}

export function isInteractive(out: Out, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(out.isTTY) && !env.CI && env.TERM !== 'dumb';
}

/** Plain lines: `[haproxy] file /etc/haproxy/haproxy.cfg: update`. */
export class PlainReporter implements Reporter {
  constructor(
    private readonly out: Out = process.stderr,
    private readonly secrets: readonly string[] = [],
  ) {}
  step(host: string, text: string) {
    this.out.write(mask(`[${host}] ${text}\n`, this.secrets));
  }
  done(host: string, ok: boolean, text: string) {
    this.out.write(mask(`[${host}] ${ok ? 'ok' : 'FAILED'}: ${text}\n`, this.secrets));
  }
  line(text: string) {
    this.out.write(mask(text.endsWith('\n') ? text : `${text}\n`, this.secrets));
  }
  close() {}
}

/** Live per-host lines on a TTY: a block of N lines redrawn on each update. */
export class TtyReporter implements Reporter {
  private readonly hosts = new Map<string, string>();
  private drawn = 0;
  constructor(
    private readonly out: Out = process.stderr,
    private readonly secrets: readonly string[] = [],
    private readonly width = (out as { columns?: number }).columns ?? 100,
  ) {}
  private redraw() {
    let s = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    for (const [host, text] of this.hosts)
      s += `\x1b[2K${mask(`${host.padEnd(14)} ${text}`, this.secrets).slice(0, this.width - 1)}\n`;
    this.drawn = this.hosts.size;
    this.out.write(s);
  }
  step(host: string, text: string) {
    this.hosts.set(host, `… ${text}`);
    this.redraw();
  }
  done(host: string, ok: boolean, text: string) {
    this.hosts.set(host, `${ok ? '\x1b[32m✓\x1b[0m' : '\x1b[31m✗\x1b[0m'} ${text}`);
    this.redraw();
  }
  line(text: string) {
    // Print above the live block: clear it, print, redraw.
    let s = this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : '';
    s += mask(text.endsWith('\n') ? text : `${text}\n`, this.secrets);
    this.drawn = 0;
    this.out.write(s);
    if (this.hosts.size) this.redraw();
  }
  close() {}
}

/** Silent (for --json, where only the summary goes to stdout) — still records for tests. */
export class MemoryReporter implements Reporter {
  readonly events: string[] = [];
  step(host: string, text: string) {
    this.events.push(`[${host}] ${text}`);
  }
  done(host: string, ok: boolean, text: string) {
    this.events.push(`[${host}] ${ok ? 'ok' : 'FAILED'}: ${text}`);
  }
  line(text: string) {
    this.events.push(text);
  }
  close() {}
}

export function defaultReporter(out: Out = process.stderr, secrets: readonly string[] = []): Reporter {
  return isInteractive(out) ? new TtyReporter(out, secrets) : new PlainReporter(out, secrets);
}
