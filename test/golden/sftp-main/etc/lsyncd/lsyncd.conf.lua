-- Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
-- sftp-main → sftp-sub: uploads are replicated within ~1s.
settings {
   logfile = "/var/log/lsyncd/lsyncd.log",
   statusFile = "/var/log/lsyncd/lsyncd.status",
   statusInterval = 10,
   -- keep retrying when the target is down at startup (pitfall 4)
   insist = true,
}

sync {
   default.rsyncssh,
   source = "/srv/sftp",
   host = "wharfsync@10.88.3.12",
   targetdir = "/srv/sftp",
   delay = 1,
   -- rsyncssh refuses anything else (moves and deletes run in order over ssh)
   maxProcesses = 1,
   -- false: never delete target-only files (a failback must not wipe uploads made on the sub)
   delete = false,
   exclude = { "*.part", "*.tmp", ".~*", ".wharf-partial", ".wharf-partial/**" },
   rsync = {
      archive = true,
      -- rsync writes here and renames into place when a file is whole (pitfall 2)
      temp_dir = "/srv/sftp/.wharf-partial",
      rsync_path = "sudo /usr/bin/rsync",
   },
   ssh = {
      identityFile = "/etc/lsyncd/id_ed25519",
      port = 22,
      options = { StrictHostKeyChecking = "yes", UserKnownHostsFile = "/etc/lsyncd/known_hosts", BatchMode = "yes" },
   },
}
