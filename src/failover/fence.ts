// Fencing the old main out of the sub while the stack is failed over. Pure.
// After an unplanned failover, main may boot at any time and its lsyncd (enabled at boot) would
// start a full main → sub rsync: with rsync's quick check, a file main holds in another version
// (e.g. a half-written upload cut by the crash) would overwrite the complete copy a client was
// acknowledged for on sub. So while failed over, sub's replication account refuses main's address:
// the `from=` pattern of its authorized_keys line gets `!<main address>` in front (sshd evaluates
// negations first). Failback lifts it only after it stopped lsyncd on main.

const FROM = /from="([^"]*)"/;

/** authorized_keys text with main's address refused; unchanged when already fenced. */
export function fenceAuthorizedKeys(text: string, mainAddr: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = FROM.exec(line);
      if (!m) return line.trim() && !line.startsWith('#') ? `from="!${mainAddr},*" ${line}` : line;
      const pats = m[1]!.split(',');
      if (pats.includes(`!${mainAddr}`)) return line;
      return line.replace(FROM, `from="${[`!${mainAddr}`, ...pats].join(',')}"`);
    })
    .join('\n');
}

/** The fence lifted (the exact text configure renders again). */
export function unfenceAuthorizedKeys(text: string, mainAddr: string): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith(`from="!${mainAddr},*" `)) return line.slice(`from="!${mainAddr},*" `.length);
      const m = FROM.exec(line);
      if (!m) return line;
      const pats = m[1]!.split(',').filter((p) => p !== `!${mainAddr}`);
      return line.replace(FROM, `from="${pats.join(',')}"`);
    })
    .join('\n');
}

export const isFenced = (text: string, mainAddr: string): boolean =>
  text.split('\n').some((l) => (FROM.exec(l)?.[1] ?? '').split(',').includes(`!${mainAddr}`));
