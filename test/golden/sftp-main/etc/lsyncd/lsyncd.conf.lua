-- Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
-- sftp-main → sftp-sub: uploads are replicated within ~1s.
settings {
   logfile = "/var/log/lsyncd/lsyncd.log",
   statusFile = "/var/log/lsyncd/lsyncd.status",
   statusInterval = 10,
   -- keep retrying when the target is down at startup (pitfall 4)
   insist = true,
}

-- Pitfall 2: an upload still being written must not be copied (rsync would send what is there so
-- far under its final name, and spend the CPU the upload needs). Each run excludes the files a
-- process holds open for writing; the upload's close_write brings a fresh event and the file
-- goes over whole. A short upload (closed before the delay ran out) goes at once. Reads /proc:
-- lsyncd runs as root.
local function openForWriting(base)
   local open = { }
   local p = io.popen("find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname '" .. base .. "/*' -printf '%h %f %l\n' 2>/dev/null")
   if not p then return open end
   for line in p:lines() do
      local dir, fd, path = line:match("^(%S+) (%S+) (.*)$")
      local f = path and io.open(dir:gsub("/fd$", "/fdinfo/") .. fd)
      if f then
         local flags = (f:read("*a") or ""):match("flags:%s*(%d+)")
         f:close()
         -- O_WRONLY (1) or O_RDWR (2): a writer; readers (downloads, checksums) do not count
         if flags and tonumber(flags, 8) % 4 ~= 0 then open[#open + 1] = path:sub(#base + 1) end
      end
   end
   p:close()
   return open
end

local function skipOpenUploads(inlet)
   local config = inlet.getConfig()
   local args = config.rsync._computed
   local n = #args
   for _, path in ipairs(openForWriting((config.source:gsub("/$", "")))) do
      log("Normal", "Still open for writing, copied when closed: ", path)
      args[#args + 1] = "--exclude=" .. path:gsub("[%[%]%*%?\\]", "\\%0")
   end
   local ok, err = pcall(default.rsyncssh.action, inlet)
   for i = #args, n + 1, -1 do args[i] = nil end
   if not ok then error(err, 0) end
end

sync {
   default.rsyncssh,
   action = skipOpenUploads,
   source = "/srv/sftp",
   host = "wharfsync@10.88.3.12",
   targetdir = "/srv/sftp",
   delay = 1,
   -- rsyncssh refuses anything else (moves and deletes run in order over ssh)
   maxProcesses = 1,
   -- false: never delete target-only files (a failback must not wipe uploads made on the sub)
   delete = false,
   exclude = { "*.part", "*.tmp", ".~*", ".wharf-partial", ".wharf-partial/**", "/*/dev", "/*/dev/**" },
   rsync = {
      archive = true,
      -- rsync writes here and renames into place when a file is whole (pitfall 2)
      temp_dir = "/srv/sftp/.wharf-partial",
      rsync_path = "sudo /usr/bin/rsync",
      -- never overwrite a newer file on the target: after an outage nobody failed back from, main
      -- boots and its startup sync must not replace an upload sub took (a newer, complete retry)
      -- with the older version main kept (e.g. cut by the crash); failback reconciles those
      update = true,
   },
   ssh = {
      identityFile = "/etc/lsyncd/id_ed25519",
      port = 22,
      options = { StrictHostKeyChecking = "yes", UserKnownHostsFile = "/etc/lsyncd/known_hosts", BatchMode = "yes",
         -- one connection for all runs (a handshake per rsync run was most of its time in a burst);
         -- keepalives end a master whose peer is gone (3 × 5 s), so a partition is noticed
         ControlMaster = "auto", ControlPath = "/run/wharf-lsyncd-%C", ControlPersist = "60",
         ServerAliveInterval = "5", ServerAliveCountMax = "3" },
   },
}
