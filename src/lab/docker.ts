// The Docker Engine API through dockerode, over the socket (or DOCKER_HOST: unix:// or tcp://).
// Every call goes through dockerCall: it gets an AbortSignal and a deadline, and a call that does
// not return in time throws DockerTimeoutError (the engine looks hung: lab up/down then let
// ensureEngine judge it and try once more, see onceMoreIfHung). `WHARF_DEBUG=1` prints each call.
// No registry: images are built locally (images.ts).
import Docker from 'dockerode';
import { RunError } from '../core/errors.ts';

/**
 * A Docker call that did not return in time: the engine looks hung (seen once in CI: dockerd
 * stopped answering in the middle of a `lab down`). Callers that can (lab up/down) restart an
 * engine wharf started and try once more.
 */
export class DockerTimeoutError extends RunError {}

/** The engine answered with an error status (404 no such container, 409 paused/conflict, …). */
export class DockerApiError extends RunError {
  constructor(
    message: string,
    readonly statusCode: number | undefined,
  ) {
    super(message);
  }
}

/**
 * How long a Docker call may take unless its caller says otherwise (builds do): 120 s, or
 * WHARF_DOCKER_TIMEOUT_MS.
 */
export const dockerTimeoutMs = (): number => Number(process.env.WHARF_DOCKER_TIMEOUT_MS) || 120_000;

let client: { host: string | undefined; docker: Docker } | undefined;

/** The dockerode client for DOCKER_HOST as it is now (read by docker-modem; default socket otherwise). */
export function engineClient(): Docker {
  const host = process.env.DOCKER_HOST;
  if (!client || client.host !== host) {
    try {
      client = { host, docker: new Docker() };
    } catch (e) {
      throw new RunError(`DOCKER_HOST=${host}: ${(e as Error).message}`);
    }
  }
  return client.docker;
}

/** Where the engine is, for messages. */
export const engineWhere = (): string =>
  process.env.DOCKER_HOST ? `DOCKER_HOST=${process.env.DOCKER_HOST}` : '/var/run/docker.sock';

interface ModemError extends Error {
  statusCode?: number;
  json?: { message?: string } | string | null;
  reason?: string;
  code?: string;
}

/** A dockerode rejection as wharf's error: the engine's own message, the call named. */
export function dockerError(what: string, e: unknown): RunError {
  if (e instanceof RunError) return e;
  const m = e as ModemError;
  if (m && typeof m.statusCode === 'number') {
    const msg =
      (typeof m.json === 'object' && m.json?.message) ||
      (typeof m.json === 'string' && m.json.trim()) ||
      m.reason ||
      m.message;
    return new DockerApiError(`${what} failed (HTTP ${m.statusCode}): ${msg}`, m.statusCode);
  }
  const code = m?.code ? ` (${m.code})` : '';
  return new RunError(
    `${what}: cannot reach the Docker engine at ${engineWhere()}${code}: ${m?.message ?? e}`,
    {
      cause: e,
    },
  );
}

export interface CallOptions {
  /** Default dockerTimeoutMs(). */
  timeoutMs?: number;
}

/**
 * One bounded Engine API call. `fn` gets the client and an AbortSignal it passes to dockerode
 * (`abortSignal`); whatever happens inside, the caller gets an answer by the deadline: past it
 * the call is aborted and DockerTimeoutError thrown.
 */
export async function dockerCall<T>(
  what: string,
  fn: (d: Docker, signal: AbortSignal) => Promise<T>,
  opts: CallOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? dockerTimeoutMs();
  const started = Date.now();
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(
        new DockerTimeoutError(
          `docker ${what} did not return within ${timeoutMs / 1000} s: the Docker engine looks hung`,
        ),
      );
    }, timeoutMs);
  });
  try {
    const work = (async () => fn(engineClient(), ctl.signal))();
    work.catch(() => {}); // after a timeout, its late rejection (the abort) is nobody's business
    return await Promise.race([work, expired]);
  } catch (e) {
    if (e instanceof DockerTimeoutError) throw e;
    throw dockerError(`docker ${what}`, e);
  } finally {
    clearTimeout(timer);
    if (process.env.WHARF_DEBUG) process.stderr.write(`  (${Date.now() - started} ms) docker ${what}\n`);
  }
}

/** A call where 404 (no such object) is an answer, not an error: returns null then. */
export async function dockerCallOr404<T>(
  what: string,
  fn: (d: Docker, signal: AbortSignal) => Promise<T>,
  opts: CallOptions = {},
): Promise<T | null> {
  try {
    return await dockerCall(what, fn, opts);
  } catch (e) {
    if (e instanceof DockerApiError && e.statusCode === 404) return null;
    throw e;
  }
}

export interface ProgressMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: unknown;
}

/**
 * Follow a progress stream (build, import) to its end. A failed build does NOT make dockerode
 * reject: the error is a message in the stream (`error` / `errorDetail`), returned here.
 */
export function followProgress(
  d: Docker,
  stream: NodeJS.ReadableStream,
  onMessage: (m: ProgressMessage) => void,
): Promise<{ error?: string; messages: ProgressMessage[] }> {
  return new Promise((resolve, reject) => {
    d.modem.followProgress(
      stream,
      (err: Error | null, out: ProgressMessage[]) => {
        if (err) return reject(err);
        const bad = out.find((m) => m.error || m.errorDetail);
        const error = bad ? (bad.errorDetail?.message ?? bad.error) : undefined;
        resolve({ ...(error ? { error } : {}), messages: out });
      },
      onMessage,
    );
  });
}
