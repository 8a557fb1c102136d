// Entry of the bundled sink program (/usr/local/lib/wharf-sink/sink.js on the sink node).
// Configuration from the environment; one JSON line per event on stdout (journald keeps it).
import { startSink } from './server.ts';

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`wharf-sink: ${name}: expected a port 0..65535, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const log = (event: Record<string, unknown>) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n');

async function main(): Promise<void> {
  const sink = await startSink({
    smtpPort: envPort('SINK_SMTP_PORT', 2525),
    httpPort: envPort('SINK_HTTP_PORT', 8080),
    bind: process.env.SINK_BIND || '0.0.0.0',
    dir: process.env.SINK_DIR || '/var/lib/wharf-sink',
    log,
  });
  log({
    event: 'listening',
    bind: process.env.SINK_BIND || '0.0.0.0',
    smtpPort: sink.smtpPort,
    httpPort: sink.httpPort,
    messages: sink.messagesFile,
    pid: process.pid,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log({ event: 'stopping', signal });
    sink.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  console.error(`wharf-sink: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
