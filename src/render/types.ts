// The contract between renderers (pure: Topology + Inventory → files) and their consumers:
// `wharf render`, the lab (which installs the network fabric files when it creates nodes),
// and the runbook engine (which plans, validates with `check`, writes and reloads).

/** A command that checks a candidate file with the daemon's own tool. `{}` is the file's path. */
export interface CheckCommand {
  argv: string[];
  /** Human name, e.g. "haproxy -c". */
  name: string;
}

export interface RenderedFile {
  /** Absolute target path on the host, e.g. /etc/haproxy/haproxy.cfg. */
  path: string;
  content: string;
  /** Octal mode, e.g. 0o644. */
  mode: number;
  owner: string;
  group: string;
  /** Content must never be printed (diffs are masked). */
  secret?: boolean;
  /** Validation by the real tool before the file replaces the old one. */
  check?: CheckCommand;
  /** systemd units to reload (or restart) when this file changes. */
  notify?: string[];
}

export interface UnitState {
  name: string;
  enable: boolean;
  /** How a changed config is applied. */
  apply: 'reload' | 'restart';
}

export interface Route {
  /** Destination subnet. */
  to: string;
  /** Next hop address. */
  via: string;
}

export interface NodeRender {
  node: string;
  files: RenderedFile[];
  units: UnitState[];
  /** Static routes the node needs for replies to travel back through the chain. */
  routes: Route[];
  sysctls: Record<string, string>;
  /** Debian packages the node's files and units need (for the install runbook). */
  packages?: string[];
}
