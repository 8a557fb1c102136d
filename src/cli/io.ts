// Where the CLI writes. Commands get an Io so tests can run the real program in-process.
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** `--json` output: exactly one JSON document on stdout. */
export function printJson(io: Io, data: unknown): void {
  io.out(`${JSON.stringify(data, null, 2)}\n`);
}

export function printLines(io: Io, lines: string[]): void {
  if (lines.length) io.out(`${lines.join('\n')}\n`);
}
