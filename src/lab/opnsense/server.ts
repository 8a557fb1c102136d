// The OPNsense API emulation: HTTPS, HTTP Basic with an API key/secret, the subset of
// /api/firewall/{filter,alias,d_nat} and /api/core/firmware/status that wharf uses, with the
// request and response shapes of OPNsense's controllers (ApiMutableModelControllerBase addBase/
// setBase/delBase/toggleBase/searchBase, FilterBaseController apply/savepoint/cancelRollback,
// DNatController's inverted toggle, AliasController reconfigure). Configuration lives in
// config.xml sections (config.ts); apply/reconfigure load it as nftables (nft.ts).
// Node builtins only: bundled for the firewall node (Node 18).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { configXml, emptyConfig, parseConfig, type Item, type OpnConfig } from './config.ts';
import { DEFAULTS, aliasUses, flattenPost, validate, type ModelName } from './model.ts';
import { renderEmulationNft, type NftOptions } from './nft.ts';

export interface EmulatorOptions {
  /** Folder holding config.xml and backups/. */
  dir: string;
  /** The version the emulation claims (d_nat from 26.1, savepoint until 26.6). */
  version: string;
  apiKey: string;
  /** sha256 hex of the API secret (the secret itself is not stored). */
  secretSha256: string;
  tls: { key: string; cert: string };
  /** Load an nft ruleset (on the node: `nft -f -`). Returns an error text or null. */
  loadNft: (text: string) => Promise<string | null>;
  /** Interface devices and the emulation's lab settings, read at each apply. */
  nftOptions: (c: OpnConfig) => Promise<NftOptions>;
  /** Arm the box's rollback to `revision` in `seconds` (on the node: a systemd-run timer); cancel it. */
  /** `script` is a shell script (rollbackScript): the timer runs it, no Node start in the way. */
  armRollback: (revision: string, seconds: number, script: string) => Promise<void>;
  cancelRollback: (revision: string) => Promise<boolean>;
  rollbackSeconds: number;
  log?: (event: Record<string, unknown>) => void;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const ver = (v: string) => {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? Number(m[1]) * 100 + Number(m[2]) : 0;
};

// ---- config store ----------------------------------------------------------------------------

export const configPath = (dir: string) => join(dir, 'config.xml');
export const backupPath = (dir: string, revision: string) => join(dir, 'backups', `config-${revision}.xml`);

export function readConfig(dir: string): OpnConfig {
  const p = configPath(dir);
  return existsSync(p) ? parseConfig(readFileSync(p, 'utf8')) : emptyConfig();
}

export function writeConfig(dir: string, c: OpnConfig): void {
  mkdirSync(dir, { recursive: true });
  const p = configPath(dir);
  writeFileSync(`${p}.tmp`, configXml(c));
  renameSync(`${p}.tmp`, p);
}

/** The box's rollback: the filter rules of a savepoint back in place (Filter model rollback), then loaded. */
export async function rollbackTo(
  dir: string,
  revision: string,
  load: (c: OpnConfig) => Promise<string | null>,
): Promise<string | null> {
  const b = backupPath(dir, revision);
  if (!existsSync(b)) return `unknown (or removed) savepoint ${revision}`;
  const firedAt = Date.now() / 1000;
  const saved = parseConfig(readFileSync(b, 'utf8'));
  const now = readConfig(dir);
  now.rules = saved.rules;
  writeConfig(dir, now);
  const err = await load(now);
  const st = readRollbackStatus(dir);
  if (st && st.revision === revision)
    writeRollbackStatus(dir, { ...st, state: 'reverted', firedAt, doneAt: Date.now() / 1000 });
  return err;
}

/**
 * What the box's rollback timer runs (sh): the prepared savepoint ruleset loaded, its config.xml put
 * in place, the status line turned `reverted` (only if this revision is still the armed one).
 */
export function rollbackScript(dir: string, revision: string): string {
  const r = `${dir}/rollback/${revision}`;
  const st = rollbackStatusPath(dir);
  return [
    'fired=$(date +%s.%N)',
    `nft -f ${r}.nft || exit 1`,
    `cp ${r}.xml ${dir}/config.xml.tmp && mv ${dir}/config.xml.tmp ${dir}/config.xml`,
    'done=$(date +%s.%N)',
    `set -- $(cat ${st})`,
    `[ "$1" = armed ] && [ "$6" = "${revision}" ] || exit 0`,
    `printf 'reverted %s %s %.3f %.3f %s\\n' "$2" "$3" "$done" "$fired" "$6" > ${st}.tmp && mv ${st}.tmp ${st}`,
  ].join('\n');
}

/**
 * The rollback's state on the box, for the lab's scenarios (read over ssh like the nftables kind's
 * nft-confirm status): `state armedAt timeoutS doneAt firedAt revision` (epoch seconds, 0 = not
 * yet), state armed | confirmed | reverted; firedAt is when the timer started the rollback.
 */
export const rollbackStatusPath = (dir: string) => join(dir, 'rollback.status');

export interface RollbackStatus {
  state: 'armed' | 'confirmed' | 'reverted';
  armedAt: number;
  timeoutS: number;
  doneAt: number;
  firedAt: number;
  revision: string;
}

export function readRollbackStatus(dir: string): RollbackStatus | null {
  try {
    const [state, armedAt, timeoutS, doneAt, firedAt, revision] = readFileSync(
      rollbackStatusPath(dir),
      'utf8',
    )
      .trim()
      .split(/\s+/);
    return {
      state: state as RollbackStatus['state'],
      armedAt: Number(armedAt),
      timeoutS: Number(timeoutS),
      doneAt: Number(doneAt),
      firedAt: Number(firedAt),
      revision: revision ?? '',
    };
  } catch {
    return null;
  }
}

export function writeRollbackStatus(dir: string, s: RollbackStatus): void {
  const p = rollbackStatusPath(dir);
  writeFileSync(
    `${p}.tmp`,
    `${s.state} ${s.armedAt.toFixed(3)} ${s.timeoutS} ${s.doneAt.toFixed(3)} ${s.firedAt.toFixed(3)} ${s.revision}\n`,
  );
  renameSync(`${p}.tmp`, p);
}

// ---- HTTP ------------------------------------------------------------------------------------

interface Route {
  module: string;
  controller: string;
  action: string;
  params: string[];
}

/** OPNsense's Router.parsePath: snake_case path elements → the controller's camelCase names. */
export function parseRoute(pathname: string): Route | null {
  const parts = pathname.split('/').filter(Boolean);
  if (parts[0] !== 'api' || parts.length < 4) return null;
  const camel = (s: string) => s.replace(/_([a-z0-9])/gi, (_m, c: string) => c.toUpperCase());
  return {
    module: parts[1]!.toLowerCase(),
    controller: camel(parts[2]!).toLowerCase(),
    action: camel(parts[3]!).replace(/^./, (c) => c.toLowerCase()),
    params: parts.slice(4).map(decodeURIComponent),
  };
}

type Json = Record<string, unknown>;

function grid(rows: Json[], req: Json): Json {
  const phrase = String(req.searchPhrase ?? '')
    .toLowerCase()
    .trim();
  let list = phrase
    ? rows.filter((r) => Object.values(r).some((v) => String(v).toLowerCase().includes(phrase)))
    : rows;
  const total = list.length;
  const rowCount = Number(req.rowCount ?? -1);
  const current = Math.max(1, Number(req.current ?? 1));
  if (rowCount > 0) list = list.slice((current - 1) * rowCount, current * rowCount);
  return { total, rowCount: rowCount > 0 ? rowCount : total, current, rows: list };
}

const SECTION: Record<ModelName, keyof Pick<OpnConfig, 'rules' | 'aliases' | 'nat'>> = {
  filter: 'rules',
  alias: 'aliases',
  dnat: 'nat',
};

export class Emulator {
  private server?: Server;
  constructor(readonly o: EmulatorOptions) {}

  private log(e: Record<string, unknown>) {
    this.o.log?.({ time: new Date().toISOString(), ...e });
  }

  private authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    const m = /^Basic\s+(.+)$/i.exec(h);
    if (!m) return false;
    const plain = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i < 0) return false;
    const key = plain.slice(0, i);
    const secretHash = Buffer.from(sha256(plain.slice(i + 1)));
    const want = Buffer.from(this.o.secretSha256);
    return key === this.o.apiKey && secretHash.length === want.length && timingSafeEqual(secretHash, want);
  }

  async load(c: OpnConfig): Promise<string | null> {
    return this.o.loadNft(renderEmulationNft(c, await this.o.nftOptions(c)));
  }

  /** One API call: method, path, parsed JSON body (or {}) → [status, JSON]. Exported for tests. */
  async handle(method: string, pathname: string, body: Json): Promise<[number, Json]> {
    const r = parseRoute(pathname);
    const notFound: [number, Json] = [404, { errorMessage: 'Endpoint not found' }];
    if (!r) return notFound;
    const v = ver(this.o.version);
    const post = method === 'POST';
    if (r.module === 'core' && r.controller === 'firmware' && r.action === 'status') {
      const product = { product_id: 'opnsense', product_name: 'OPNsense', product_version: this.o.version };
      return [
        200,
        v >= 2601
          ? { status: 'none', status_msg: 'There are no updates available on the selected mirror.', product }
          : {
              status: 'none',
              status_msg: 'There are no updates available on the selected mirror.',
              ...product,
            },
      ];
    }
    if (r.module !== 'firewall') return notFound;
    const model: ModelName | null =
      r.controller === 'filter'
        ? 'filter'
        : r.controller === 'alias'
          ? 'alias'
          : r.controller === 'dnat' && v >= 2601
            ? 'dnat'
            : null;
    if (!model) return notFound;
    const c = readConfig(this.o.dir);
    const items = c[SECTION[model]];
    const postKey = model === 'alias' ? 'alias' : 'rule';
    const noun = model === 'alias' ? 'Item' : 'Rule';
    const save = () => writeConfig(this.o.dir, c);
    const a = r.action;
    const uuid = r.params[0] ?? '';

    if (a === `search${noun}`)
      return [
        200,
        grid(
          items.map((it) => ({ uuid: it.uuid, ...it.f })),
          body,
        ),
      ];
    if (a === `get${noun}`) {
      if (!uuid) return [200, { [postKey]: { ...DEFAULTS[model] } }];
      const it = items.find((x) => x.uuid === uuid);
      return [200, it ? { [postKey]: nest(it.f) } : {}];
    }
    if (a === `add${noun}` || a === `set${noun}`) {
      const posted = body[postKey];
      if (!post || !posted || typeof posted !== 'object') return [200, { result: 'failed' }];
      let it = a === `set${noun}` ? items.find((x) => x.uuid === uuid) : undefined;
      if (a === `set${noun}` && !it) {
        // setBase is an upsert for a well-formed uuid it does not know
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid))
          return [200, { result: 'failed' }];
        it = { uuid, f: { ...DEFAULTS[model] } };
      }
      const isNew = !it || !items.includes(it);
      const candidate: Item = it
        ? { uuid: it.uuid, f: { ...it.f } }
        : { uuid: randomUUID(), f: { ...DEFAULTS[model] } };
      Object.assign(candidate.f, flattenPost(model, posted));
      if (model === 'dnat' && !candidate.f.sequence)
        candidate.f.sequence = String(Math.max(0, ...items.map((x) => Number(x.f.sequence) || 0)) + 1);
      const errs = validate(model, candidate.f, c, candidate.uuid);
      if (Object.keys(errs).length)
        return [
          200,
          {
            result: 'failed',
            validations: Object.fromEntries(Object.entries(errs).map(([k, m]) => [`${postKey}.${k}`, m])),
          },
        ];
      if (isNew) items.push(candidate);
      else Object.assign(it!.f, candidate.f);
      save();
      this.log({ event: a, uuid: candidate.uuid });
      return [200, a === `add${noun}` ? { result: 'saved', uuid: candidate.uuid } : { result: 'saved' }];
    }
    if (a === `del${noun}`) {
      if (!post) return [200, { result: 'failed' }];
      let result = 'failed';
      for (const id of uuid.split(',').filter(Boolean)) {
        const i = items.findIndex((x) => x.uuid === id);
        if (i < 0) {
          result = 'not found';
          continue;
        }
        if (model === 'alias') {
          const uses = aliasUses(c, items[i]!.f.name ?? '');
          if (uses.length)
            return [
              200,
              {
                errorMessage: `Cannot delete alias. Currently in use by ${uses.map((u) => `\n${u}`).join('')}`,
                errorTitle: 'Alias in use',
              },
            ];
        }
        items.splice(i, 1);
        result = 'deleted';
      }
      if (result === 'deleted') save();
      return [200, { result }];
    }
    if (a === `toggle${noun}`) {
      if (!post) return [200, { result: 'failed' }];
      const it = items.find((x) => x.uuid === uuid);
      if (!it) return [200, { result: 'failed' }];
      const want = r.params[1];
      if (model === 'dnat') {
        // DNatController::toggleRuleAction: the parameter is *disabled*
        it.f.disabled = want === '0' || want === '1' ? want : it.f.disabled === '1' ? '0' : '1';
        save();
        return [200, { result: it.f.disabled === '1' ? 'Disabled' : 'Enabled' }];
      }
      const before = it.f.enabled;
      it.f.enabled = want === '0' || want === '1' ? want : it.f.enabled === '1' ? '0' : '1';
      save();
      return [
        200,
        { result: it.f.enabled === '1' ? 'Enabled' : 'Disabled', changed: before !== it.f.enabled },
      ];
    }
    if (model === 'alias' && a === 'reconfigure') {
      if (!post) return [200, { status: 'failed' }];
      const err = await this.load(c);
      if (err) return [200, { errorMessage: err, errorTitle: 'Alias' }];
      return [200, { status: 'ok' }];
    }
    if (a === 'apply') {
      if (!post) return [200, { status: 'error' }];
      const revision = r.params[0];
      if (revision && model === 'filter' && v < 2607) {
        // the rollback is prepared now (the savepoint's filter rules over the changed config, as
        // config.xml and as nftables), so the timer only loads it: fast on a loaded box
        const b = backupPath(this.o.dir, revision);
        if (!existsSync(b)) return [200, { status: `error: unknown (or removed) savepoint ${revision}` }];
        const rolled: OpnConfig = { ...c, rules: parseConfig(readFileSync(b, 'utf8')).rules };
        mkdirSync(join(this.o.dir, 'rollback'), { recursive: true });
        writeFileSync(join(this.o.dir, 'rollback', `${revision}.xml`), configXml(rolled));
        writeFileSync(
          join(this.o.dir, 'rollback', `${revision}.nft`),
          renderEmulationNft(rolled, await this.o.nftOptions(rolled)),
        );
        await this.o.armRollback(revision, this.o.rollbackSeconds, rollbackScript(this.o.dir, revision));
        writeRollbackStatus(this.o.dir, {
          state: 'armed',
          armedAt: Date.now() / 1000,
          timeoutS: this.o.rollbackSeconds,
          doneAt: 0,
          firedAt: 0,
          revision,
        });
      }
      const err = await this.load(c);
      this.log({ event: 'apply', revision: revision ?? null, error: err });
      return [200, { status: err ? `error: ${err}` : 'OK\n\n' }];
    }
    if (model === 'filter' && v < 2607 && a === 'savepoint') {
      if (!post) return [200, { status: 'error' }];
      const revision = `${(Date.now() / 1000).toFixed(4)}`;
      save();
      mkdirSync(join(this.o.dir, 'backups'), { recursive: true });
      copyFileSync(configPath(this.o.dir), backupPath(this.o.dir, revision));
      return [200, { status: 'ok', retention: '60', revision }];
    }
    if (model === 'filter' && v < 2607 && a === 'cancelRollback') {
      if (!post) return [200, { status: 'error' }];
      const ok = await this.o.cancelRollback(uuid);
      const st = readRollbackStatus(this.o.dir);
      if (ok && st && st.revision === uuid && st.state === 'armed')
        writeRollbackStatus(this.o.dir, { ...st, state: 'confirmed', doneAt: Date.now() / 1000 });
      return [200, { status: ok ? 'OK' : 'no rollback pending' }];
    }
    if (model === 'filter' && v < 2607 && a === 'revert') {
      if (!post) return [200, { status: 'error' }];
      const err = await rollbackTo(this.o.dir, uuid, (cc) => this.load(cc));
      return [200, { status: err ?? 'ok' }];
    }
    return notFound;
  }

  private async serve(req: IncomingMessage, res: ServerResponse) {
    const send = (status: number, json: Json) => {
      const text = JSON.stringify(json);
      res.writeHead(status, {
        'content-type': 'application/json; charset=UTF-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    if (!this.authorized(req)) {
      this.log({ event: 'unauthorized', path: req.url });
      return send(401, { status: 401, message: 'Authentication Failed' });
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Json = {};
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim()) {
      try {
        body = JSON.parse(text) as Json;
      } catch {
        return send(400, { errorMessage: 'Invalid JSON body' });
      }
    }
    const url = new URL(req.url ?? '/', 'https://x');
    if (req.method === 'GET') for (const [k, val] of url.searchParams) body[k] = val;
    try {
      const [status, json] = await this.handle(req.method ?? 'GET', url.pathname, body);
      this.log({ event: 'request', method: req.method, path: url.pathname, status });
      send(status, json);
    } catch (e) {
      this.log({ event: 'error', path: url.pathname, error: (e as Error).message });
      send(500, { errorMessage: (e as Error).message });
    }
  }

  listen(port: number, host: string): Promise<number> {
    this.server = createServer(
      { key: this.o.tls.key, cert: this.o.tls.cert },
      (req, res) => void this.serve(req, res),
    );
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => {
        const a = this.server!.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Flat `source.network` fields back into the nested shape getRule returns. */
function nest(f: Record<string, string>): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(f)) {
    const i = k.indexOf('.');
    if (i < 0) out[k] = v;
    else ((out[k.slice(0, i)] ??= {}) as Json)[k.slice(i + 1)] = v;
  }
  return out;
}
