// HTTP to an OPNsense box: HTTPS only, HTTP Basic with the API key and secret (read from files the
// inventory names), the box's CA from caFile. The secret never leaves this module: errors and
// logs carry method, path and status only.
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { InputError, RunError } from '../core/errors.ts';
import type { CommandStyle } from './types.ts';

export interface OpnApiConfig {
  url: string;
  keyFile: string;
  secretFile: string;
  caFile?: string;
  /** Command spelling: camelCase (every release) or snake_case (newer releases). Default camel. */
  commands?: CommandStyle;
}

export interface OpnCredentials {
  base: URL;
  key: string;
  secret: string;
  ca?: string;
  style: CommandStyle;
}

/** OPNsense's downloaded key file is `key=…` / `secret=…` lines; a file with the bare value works too. */
function readCredential(file: string, name: 'key' | 'secret', where: string): string {
  let text: string;
  try {
    if (!statSync(file).isFile()) throw new Error('not a regular file');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`${where}.${name}File: cannot read ${file}: ${(e as Error).message}`);
  }
  const m = new RegExp(`^${name}=(.*)$`, 'm').exec(text);
  const value = (m ? m[1]! : text).trim();
  if (!value) throw new InputError(`${where}.${name}File: ${file} is empty`);
  if (/\s/.test(value) || (value.includes(':') && name === 'key'))
    throw new InputError(
      `${where}.${name}File: ${file} must hold one ${name} (no spaces${name === 'key' ? ' or colons' : ''})`,
    );
  return value;
}

/** Check the inventory's `api` block and read the credentials (errors name the field, never the value). */
export function loadCredentials(api: OpnApiConfig, where: string): OpnCredentials {
  let base: URL;
  try {
    base = new URL(api.url);
  } catch {
    throw new InputError(
      `${where}.url: expected a URL like https://192.0.2.1, got ${JSON.stringify(api.url)}`,
    );
  }
  if (base.protocol !== 'https:')
    throw new InputError(`${where}.url: the API key and secret go over HTTPS only, got ${base.protocol}//`);
  if (base.username || base.password)
    throw new InputError(`${where}.url: credentials belong in keyFile/secretFile, not in the URL`);
  const key = readCredential(api.keyFile, 'key', where);
  const secret = readCredential(api.secretFile, 'secret', where);
  let ca: string | undefined;
  if (api.caFile) {
    try {
      ca = readFileSync(api.caFile, 'utf8');
    } catch (e) {
      throw new InputError(`${where}.caFile: cannot read ${api.caFile}: ${(e as Error).message}`);
    }
    if (!ca.includes('BEGIN CERTIFICATE'))
      throw new InputError(`${where}.caFile: ${api.caFile} holds no PEM certificate`);
  }
  return { base, key, secret, ...(ca ? { ca } : {}), style: api.commands ?? 'camel' };
}

export interface OpnResponse {
  status: number;
  json: unknown;
}

export class OpnClient {
  constructor(
    readonly creds: OpnCredentials,
    readonly timeoutMs = 15_000,
  ) {}

  get style(): CommandStyle {
    return this.creds.style;
  }

  /** One call. Non-2xx answers and non-JSON bodies are errors naming method and path (no secret). */
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<OpnResponse> {
    const url = new URL(path, this.creds.base);
    const payload = method === 'POST' ? JSON.stringify(body ?? {}) : undefined;
    const auth = Buffer.from(`${this.creds.key}:${this.creds.secret}`).toString('base64');
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          // a fresh connection per call: a kept-alive one would ride the firewall's established
          // state and hide a change that cuts new management connections
          agent: false,
          ...(this.creds.ca ? { ca: this.creds.ca } : {}),
          headers: {
            authorization: `Basic ${auth}`,
            accept: 'application/json',
            ...(payload !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : {};
            } catch {
              return reject(
                new RunError(`${method} ${path}: HTTP ${status}, not JSON: ${text.slice(0, 200)}`),
              );
            }
            if (status === 401 || status === 403)
              return reject(
                new RunError(`${method} ${path}: HTTP ${status}: the API key/secret was refused`),
              );
            if (status < 200 || status >= 300)
              return reject(new RunError(`${method} ${path}: HTTP ${status}: ${text.slice(0, 300)}`));
            resolve({ status, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(new RunError(`${method} ${url.origin}${path}: ${e.message}`)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}
