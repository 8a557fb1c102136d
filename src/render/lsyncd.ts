// lsyncd main → sub over ssh (rsyncssh), with rsync's temp dir so a file appears on the target only
// when whole, a short delay, insist, and a delete policy that is safe for failback (pitfalls 1–5).
import type { Topology } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { CheckCommand, RenderedFile } from './types.ts';
import { file, header, lines, luaStr, unitCheck } from './util.ts';
import { CHROOT_LOG_DIR } from './sshd.ts';

export const LSYNCD_CONF = '/etc/lsyncd/lsyncd.conf.lua';
export const LSYNCD_UNIT = '/etc/systemd/system/lsyncd.service';
/** The replication user's key and the target's host key, placed by the runbook. */
export const LSYNCD_KEY = '/etc/lsyncd/id_ed25519';
export const LSYNCD_KNOWN_HOSTS = '/etc/lsyncd/known_hosts';
/**
 * One ssh connection main → sub, reused by every rsync run and mv of lsyncd (OpenSSH multiplexing):
 * a burst of small uploads is shipped in many short rsync runs, and a new ssh handshake per run
 * (≈ 0.1 s idle, ≈ 1 s on a loaded host) was most of each run's time. The socket is root-only (/run);
 * the master is a child of lsyncd.service, so stopping lsyncd (failover, fencing) ends it too.
 */
export const LSYNCD_CONTROL_PATH = '/run/wharf-lsyncd-%C';
/** Seconds an idle master connection stays up; keepalives end a master whose peer is gone. */
export const LSYNCD_CONTROL_PERSIST = 60;

// Option names lsyncd 2.2.3 accepts (read from its compiled-in default-rsync/rsyncssh layers).
const SETTINGS_KEYS = [
  'logfile',
  'statusFile',
  'statusInterval',
  'insist',
  'nodaemon',
  'maxProcesses',
  'maxDelays',
  'inotifyMode',
  'pidfile',
  'logfacility',
  'logident',
];
const SYNC_KEYS = [
  'action',
  'source',
  'host',
  'targetdir',
  'target',
  'delay',
  'delete',
  'exclude',
  'excludeFrom',
  'rsync',
  'ssh',
  'maxProcesses',
  'maxDelays',
  'init',
  'onStartup',
  'filter',
  'filterFrom',
];
const RSYNC_KEYS = [
  'acls',
  'append',
  'append_verify',
  'archive',
  'backup',
  'backup_dir',
  'binary',
  'bwlimit',
  'checksum',
  'chown',
  'chmod',
  'compress',
  'copy_dirlinks',
  'copy_links',
  'cvs_exclude',
  'dry_run',
  'executability',
  'existing',
  'group',
  'groupmap',
  'hard_links',
  'ignore_times',
  'inplace',
  'ipv4',
  'ipv6',
  'keep_dirlinks',
  'links',
  'one_file_system',
  'omit_dir_times',
  'omit_link_times',
  'owner',
  'password_file',
  'perms',
  'protect_args',
  'prune_empty_dirs',
  'quiet',
  'rsh',
  'rsync_path',
  'sparse',
  'suffix',
  'temp_dir',
  'timeout',
  'times',
  'update',
  'usermap',
  'verbose',
  'whole_file',
  'xattrs',
  '_extra',
];
const SSH_KEYS = ['binary', 'identityFile', 'options', 'port', '_extra'];

const luaSet = (keys: string[]) => `{${keys.map((k) => `${k}=true`).join(',')}}`;

/**
 * Lua program for `lua5.4 -e PROGRAM /dev/null FILE`: loads FILE with lsyncd's `settings`, `sync`
 * and `default` replaced by checkers, so syntax errors AND unknown option names fail (lsyncd has
 * no config-test mode; the standalone interpreter creates `arg` before running -e).
 */
export const LSYNCD_CHECK_LUA = [
  `local S,Y,R,H=${luaSet(SETTINGS_KEYS)},${luaSet(SYNC_KEYS)},${luaSet(RSYNC_KEYS)},${luaSet(SSH_KEYS)}`,
  'local function fail(m) io.stderr:write(arg[1]..": "..m.."\\n") os.exit(1) end',
  'local function keys(what,t,ok) if type(t)~="table" then fail(what..": expected a table") end',
  '  for k in pairs(t) do if type(k)=="string" and not ok[k] then fail(what..": unknown option "..k) end end end',
  'local env=setmetatable({ },{__index=_G}) local syncs=0',
  'env.default={rsync={ },rsyncssh={ },direct={ }}',
  'local gmax=nil',
  'env.settings=function(t) keys("settings",t,S) gmax=t.maxProcesses end',
  'env.sync=function(t) keys("sync",t,Y)',
  '  if type(t[1])~="table" then fail("sync: first entry must be a default.* layer") end',
  '  if type(t.source)~="string" then fail("sync: source missing") end',
  '  if t[1]==env.default.rsyncssh and (t.maxProcesses or gmax or 1)~=1 then fail("sync: default.rsyncssh must have maxProcesses set to 1") end',
  '  if t.rsync then keys("sync.rsync",t.rsync,R) end',
  '  if t.ssh then keys("sync.ssh",t.ssh,H) end',
  '  syncs=syncs+1 end',
  'local f,e=loadfile(arg[1],"t",env) if not f then fail(e) end',
  'local ok,err=pcall(f) if not ok then fail(tostring(err)) end',
  'if syncs==0 then fail("no sync block") end',
].join('\n');

export const LSYNCD_CHECK: CheckCommand = {
  name: 'lua5.4 (lsyncd config)',
  argv: ['lua5.4', '-e', LSYNCD_CHECK_LUA, '/dev/null', '{}'],
};

const luaDelete = (d: boolean | 'startup' | 'running'): string =>
  typeof d === 'boolean' ? String(d) : luaStr(d);

export function renderLsyncdConf(t: Topology, inv: Inventory): RenderedFile {
  const l = t.replication.lsyncd;
  const base = t.sftp.chrootBase;
  const target = addressOf(inv, l.to, 'lan');
  // each chroot's log socket folder (a bind mount of journald's socket, not data)
  const excludes = [
    ...l.excludes,
    l.tempDir,
    `${l.tempDir}/**`,
    `/*/${CHROOT_LOG_DIR}`,
    `/*/${CHROOT_LOG_DIR}/**`,
  ];
  const text = lines(
    header(t, '--').trimEnd(),
    `-- ${l.from} → ${l.to}: uploads are replicated within ~${l.delay}s.`,
    'settings {',
    '   logfile = "/var/log/lsyncd/lsyncd.log",',
    '   statusFile = "/var/log/lsyncd/lsyncd.status",',
    '   statusInterval = 10,',
    '   -- keep retrying when the target is down at startup (pitfall 4)',
    `   insist = ${l.insist},`,
    '}',
    '',
    '-- Pitfall 2: an upload still being written must not be copied (rsync would send what is there so',
    '-- far under its final name, and spend the CPU the upload needs). Each run excludes the files a',
    "-- process holds open for writing; the upload's close_write brings a fresh event and the file",
    '-- goes over whole. A short upload (closed before the delay ran out) goes at once. Reads /proc:',
    '-- lsyncd runs as root.',
    'local function openForWriting(base)',
    '   local open = { }',
    '   local p = io.popen("find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname \'" .. base .. "/*\' -printf \'%h %f %l\\n\' 2>/dev/null")',
    '   if not p then return open end',
    '   for line in p:lines() do',
    '      local dir, fd, path = line:match("^(%S+) (%S+) (.*)$")',
    '      local f = path and io.open(dir:gsub("/fd$", "/fdinfo/") .. fd)',
    '      if f then',
    '         local flags = (f:read("*a") or ""):match("flags:%s*(%d+)")',
    '         f:close()',
    '         -- O_WRONLY (1) or O_RDWR (2): a writer; readers (downloads, checksums) do not count',
    '         if flags and tonumber(flags, 8) % 4 ~= 0 then open[#open + 1] = path:sub(#base + 1) end',
    '      end',
    '   end',
    '   p:close()',
    '   return open',
    'end',
    '',
    'local function skipOpenUploads(inlet)',
    '   local config = inlet.getConfig()',
    '   local args = config.rsync._computed',
    '   local n = #args',
    '   for _, path in ipairs(openForWriting((config.source:gsub("/$", "")))) do',
    '      log("Normal", "Still open for writing, copied when closed: ", path)',
    '      args[#args + 1] = "--exclude=" .. path:gsub("[%[%]%*%?\\\\]", "\\\\%0")',
    '   end',
    '   local ok, err = pcall(default.rsyncssh.action, inlet)',
    '   for i = #args, n + 1, -1 do args[i] = nil end',
    '   if not ok then error(err, 0) end',
    'end',
    '',
    'sync {',
    '   default.rsyncssh,',
    '   action = skipOpenUploads,',
    `   source = ${luaStr(base)},`,
    `   host = ${luaStr(`${l.user}@${target}`)},`,
    `   targetdir = ${luaStr(base)},`,
    `   delay = ${l.delay},`,
    '   -- rsyncssh refuses anything else (moves and deletes run in order over ssh)',
    '   maxProcesses = 1,',
    '   -- false: never delete target-only files (a failback must not wipe uploads made on the sub)',
    `   delete = ${luaDelete(l.delete)},`,
    `   exclude = { ${excludes.map(luaStr).join(', ')} },`,
    '   rsync = {',
    '      archive = true,',
    '      -- rsync writes here and renames into place when a file is whole (pitfall 2)',
    `      temp_dir = ${luaStr(`${base}/${l.tempDir}`)},`,
    '      rsync_path = "sudo /usr/bin/rsync",',
    '      -- never overwrite a newer file on the target: after an outage nobody failed back from, main',
    '      -- boots and its startup sync must not replace an upload sub took (a newer, complete retry)',
    '      -- with the older version main kept (e.g. cut by the crash); failback reconciles those',
    '      update = true,',
    '   },',
    '   ssh = {',
    `      identityFile = ${luaStr(LSYNCD_KEY)},`,
    `      port = ${t.sftp.port},`,
    `      options = { StrictHostKeyChecking = "yes", UserKnownHostsFile = ${luaStr(LSYNCD_KNOWN_HOSTS)}, BatchMode = "yes",`,
    '         -- one connection for all runs (a handshake per rsync run was most of its time in a burst);',
    '         -- keepalives end a master whose peer is gone (3 × 5 s), so a partition is noticed',
    `         ControlMaster = "auto", ControlPath = ${luaStr(LSYNCD_CONTROL_PATH)}, ControlPersist = "${LSYNCD_CONTROL_PERSIST}",`,
    '         ServerAliveInterval = "5", ServerAliveCountMax = "3" },',
    '   },',
    '}',
  );
  return file(LSYNCD_CONF, text, { check: LSYNCD_CHECK, notify: ['lsyncd'] });
}

/** Debian ships only a SysV script; this native unit supervises lsyncd (it exits on unknown errors). */
export function renderLsyncdUnit(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    'Description=lsyncd: live replication of SFTP uploads (wharf)',
    'After=network-online.target',
    'Wants=network-online.target',
    `ConditionPathExists=${LSYNCD_CONF}`,
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=/usr/bin/lsyncd -nodaemon ${LSYNCD_CONF}`,
    'Restart=always',
    'RestartSec=2',
    'LogsDirectory=lsyncd',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  );
  return file(LSYNCD_UNIT, text, { check: unitCheck('lsyncd.service'), notify: ['lsyncd'] });
}
