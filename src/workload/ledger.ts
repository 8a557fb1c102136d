// The ledger of acknowledged uploads: one JSON line per upload the server said "OK" for.
// A checker later compares it with what is really on main, sub and backup.
import { appendFileSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Ack {
  /** Remote path relative to the user's chroot, e.g. upload/w3-000017.bin */
  path: string;
  size: number;
  sha256: string;
  /** Epoch ms when the server acknowledged the upload. */
  ackAt: number;
  /**
   * Epoch ms when the acknowledged attempt started (its connect, if it made one). An RTO counts
   * only uploads started after the fault: one whose reply was in flight when main died says nothing
   * about recovery.
   */
  startedAt?: number;
  client: number;
  attempts: number;
}

export class Ledger {
  readonly acks: Ack[] = [];
  constructor(readonly file?: string) {
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  record(a: Ack): void {
    this.acks.push(a);
    if (this.file) appendFileSync(this.file, JSON.stringify(a) + '\n');
  }

  static read(file: string): Ledger {
    const l = new Ledger();
    if (!existsSync(file)) return l;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim()) l.acks.push(JSON.parse(line) as Ack);
    }
    return l;
  }
}
