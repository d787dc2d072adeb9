-- Snapshots from Lua: rt:save(path) and ng.load(path), answering like io.open (true | nil, msg).
local h = require "spec.helpers"
local ng = h.ng

local tmpdir, rmdir = h.tmpdir, h.rmdir

local function entries(d)
  local names = {}
  local p = io.popen("ls -A " .. d)
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

local read = h.read

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A small world: tokens in every space, typed connections, holes in both id sequences.
local function world()
  local rt = ng.Runtime()
  local ids = {}
  for i = 1, 20 do
    local coords = {}
    for s = 1, 8 do coords[s] = { i * 0.01, -s * 0.01, (i % 3) * 0.02 } end
    ids[i] = rt.tokens:create{
      weight = i / 4, entity = i % 2 == 0 and "Concept" or "Event", coords = coords,
      field_radius = 1.5, field_strength = 0.5, timestamp = 1700000000 + i,
    }
  end
  for i = 1, 19 do
    rt.connections:create(ids[i], ids[i + 1], { type = i % 2 == 0 and "Cause" or "Synonym",
                                                pull_strength = 0.25 * i, confidence = 0.5 })
  end
  rt.tokens:delete(ids[7])
  rt.connections:delete(3)
  return rt
end

describe("rt:save and ng.load", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("round-trips every record, the CDNA and the ids", function()
    local rt = world()
    rt.cdna:set_profile("Analyst")
    local path = dir .. "/world.ngs"
    assert.is_true(rt:save(path))
    local back = ng.load(path)
    assert.equals("neurograph.Runtime", getmetatable(back).__name)
    assert.same(h.state(rt), h.state(back))
    assert.is_nil(back.tokens:get(7))
    assert.same({ "world.ngs" }, entries(dir)) -- no temporary file left behind
    rt:close()
    back:close()
  end)

  it("continues ids after the highest saved ones", function()
    local rt = world()
    local next_token = rt.tokens:create{}
    rt.tokens:delete(next_token) -- the highest id is gone, but never reused
    local path = dir .. "/ids.ngs"
    assert.is_true(rt:save(path))
    local back = ng.load(path)
    assert.equals(next_token + 1, back.tokens:create{})
    assert.equals(rt.connections:create(1, 3), back.connections:create(1, 3))
    rt:close()
    back:close()
  end)

  it("saves and loads an empty runtime", function()
    local rt = ng.Runtime()
    local path = dir .. "/empty.ngs"
    assert.is_true(rt:save(path))
    local back = ng.load(path)
    assert.equals(0, back.tokens:count())
    assert.equals(0, back.connections:count())
    assert.equals(1, back.tokens:create{})
    back:close()
    rt:close()
  end)

  it("overwrites an existing snapshot atomically", function()
    local rt = world()
    local path = dir .. "/w.ngs"
    assert.is_true(rt:save(path))
    rt.tokens:create{ weight = 3 }
    assert.is_true(rt:save(path))
    assert.equals(rt.tokens:count(), ng.load(path).tokens:count())
    assert.same({ "w.ngs" }, entries(dir))
    rt:close()
  end)

  it("answers nil and a message for an unwritable path, leaving no file", function()
    local rt = world()
    local ok, msg = rt:save(dir .. "/no/such/dir/w.ngs")
    assert.is_nil(ok)
    assert.matches("no/such/dir/w.ngs", msg, 1, true)
    assert.matches("No such file or directory", msg, 1, true)
    assert.same({}, entries(dir))
    rt:close()
  end)

  it("saves through a symbolic link, replacing its target and keeping the link", function()
    local rt = world()
    local real = dir .. "/real.ngs"
    assert.is_true(rt:save(real))
    assert(os.execute("ln -s real.ngs " .. dir .. "/link.ngs"))
    rt.tokens:create{ weight = 3 }
    assert.is_true(rt:save(dir .. "/link.ngs"))
    assert.equals(rt.tokens:count(), ng.load(real).tokens:count())
    assert.truthy(os.execute("test -L " .. dir .. "/link.ngs"))
    assert.same({ "link.ngs", "real.ngs" }, entries(dir))
    rt:close()
  end)

  it("answers nil and a message for a FIFO, leaving it a FIFO", function()
    local rt = world()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo " .. fifo))
    local ok, msg = rt:save(fifo)
    assert.is_nil(ok)
    assert.matches(fifo, msg, 1, true)
    assert.matches("not a regular file", msg, 1, true)
    assert.truthy(os.execute("test -p " .. fifo))
    assert.same({ "fifo" }, entries(dir))
    rt:close()
  end)

  it("answers nil and a message for a missing file", function()
    local rt, msg = ng.load(dir .. "/missing.ngs")
    assert.is_nil(rt)
    assert.matches("missing.ngs", msg, 1, true)
    assert.matches("No such file", msg, 1, true)
  end)

  it("refuses a damaged file, naming what is wrong", function()
    local rt = world()
    local path = dir .. "/w.ngs"
    assert.is_true(rt:save(path))
    local bytes = read(path)
    -- one flipped bit in a token record
    local i = 80 + 388 + 100
    write(path, bytes:sub(1, i - 1) .. string.char(h.bxor(bytes:byte(i), 4)) .. bytes:sub(i + 1))
    local back, msg = ng.load(path)
    assert.is_nil(back)
    assert.matches("token section checksum mismatch", msg, 1, true)
    -- truncated
    write(path, bytes:sub(1, #bytes - 1))
    back, msg = ng.load(path)
    assert.is_nil(back)
    assert.matches("truncated", msg, 1, true)
    -- not a snapshot at all
    write(path, "return 42\n")
    back, msg = ng.load(path)
    assert.is_nil(back)
    assert.matches("not a neurograph snapshot", msg, 1, true)
    rt:close()
  end)

  it("refuses a file from a newer major format version", function()
    local rt = ng.Runtime()
    local path = dir .. "/v.ngs"
    assert.is_true(rt:save(path))
    local bytes = read(path)
    -- major version 4 at offset 8, with the header CRC (CRC-32C of bytes 0..75) recomputed
    local header = bytes:sub(1, 8) .. h.le_bytes(4, 2) .. bytes:sub(11, 76)
    local crc = 0xFFFFFFFF
    for k = 1, #header do
      crc = h.bxor(crc, header:byte(k))
      for _ = 1, 8 do
        crc = crc % 2 ~= 0 and h.bxor(h.shr(crc, 1), 0x82F63B78) or h.shr(crc, 1)
      end
    end
    write(path, header .. h.le_bytes(h.bxor(crc, 0xFFFFFFFF), 4) .. bytes:sub(81))
    local back, msg = ng.load(path)
    assert.is_nil(back)
    assert.matches("format version 4.0 is newer", msg, 1, true)
    rt:close()
  end)

  it("raises for a caller's mistakes", function()
    local rt = ng.Runtime()
    h.raises("bad argument #2 to 'save' (path must be a string, got 42)", rt.save, rt, 42)
    h.raises("bad argument #1 to 'load' (path must be a string, got nil)", ng.load, nil)
    h.raises("bad argument #1 to 'load'", ng.load, "")
    rt:close()
    h.raises("runtime is closed", rt.save, rt, dir .. "/x.ngs")
  end)
end)

-- ngrun's snapshot files: --load=FILE, --save=FILE (--world=DIR, a durable world, is
-- spec/journal_ngrun_spec.lua's).
-- ngrun is a Lua 5.4 host, built only for NG_LUA=5.4.
local describe_ngrun = h.lua54 and describe or pending
describe_ngrun("ngrun --load and --save", function()
  local NGRUN = h.build .. "/ngrun"
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  -- Runs ngrun with a shell-quoted argument string; returns exit code and combined output.
  local function ngrun(args)
    local p = assert(io.popen(NGRUN .. " " .. args .. " 2>&1; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out
  end

  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end

  it("starts empty, saves on success and continues from the file", function()
    local w = dir .. "/world.ngs"
    local rc, out = ngrun("--save=" .. w .. " -e 'print(runtime.tokens:count()); "
                          .. "runtime.tokens:create{ weight = 2 }'")
    assert.equals(0, rc, out)
    assert.matches("^0\n", out)
    assert.is_true(exists(w))
    rc, out = ngrun("--load " .. w .. " --save " .. w .. " -e 'print(runtime.tokens:count(), "
                    .. "runtime.tokens:get(1).weight); runtime.tokens:create{}'")
    assert.equals(0, rc, out)
    assert.matches("^1\t2", out)
    assert.equals(2, ng.load(w).tokens:count())
    assert.same({ "world.ngs" }, entries(dir))
  end)

  it("does not save when the script fails, and leaves the file as it was", function()
    local w = dir .. "/world.ngs"
    assert.equals(0, (ngrun("--save=" .. w .. " -e 'runtime.tokens:create{}'")))
    local before = read(w)
    local rc, out = ngrun("--load=" .. w .. " --save=" .. w
                          .. " -e 'runtime.tokens:create{}; error(\"boom\")'")
    assert.equals(1, rc)
    assert.matches("boom", out, 1, true)
    assert.equals(before, read(w))
    rc = ngrun("--load=" .. w .. " --save=" .. w
               .. " --timeout=0.2 -e 'runtime.tokens:create{}; while true do end'")
    assert.equals(1, rc)
    assert.equals(before, read(w))
    assert.same({ "world.ngs" }, entries(dir))
  end)

  it("refuses to start from a corrupt snapshot and leaves it untouched", function()
    local w = dir .. "/world.ngs"
    assert.equals(0, (ngrun("--save=" .. w .. " -e 'runtime.tokens:create{}'")))
    local bytes = read(w)
    local bad = bytes:sub(1, 200) .. string.char(h.bxor(bytes:byte(201), 1)) .. bytes:sub(202)
    write(w, bad)
    local rc, out = ngrun("--load=" .. w .. " --save=" .. w .. " -e 'print(\"ran\")'")
    assert.equals(1, rc)
    assert.matches("ngrun: " .. w .. ": CDNA section checksum mismatch", out, 1, true)
    assert.is_nil(out:find("ran", 1, true))
    assert.equals(bad, read(w))
  end)

  it("--load needs the file, --save writes another one", function()
    local a, b = dir .. "/a.ngs", dir .. "/b.ngs"
    local rc, out = ngrun("--load=" .. a .. " -e 'print(\"ran\")'")
    assert.equals(1, rc)
    assert.matches("cannot open " .. a .. ": No such file or directory", out, 1, true)
    assert.equals(0, (ngrun("--save=" .. a .. " -e 'runtime.tokens:create{}'")))
    rc, out = ngrun("--load=" .. a .. " --save=" .. b .. " -e 'runtime.tokens:create{}'")
    assert.equals(0, rc, out)
    assert.equals(1, ng.load(a).tokens:count())
    assert.equals(2, ng.load(b).tokens:count())
    rc, out = ngrun("--save=" .. dir .. "/missing/c.ngs -e 'x = 1'")
    assert.equals(1, rc)
    assert.matches("missing/c.ngs: No such file or directory", out, 1, true)
  end)

  it("rejects conflicting options", function()
    local rc, out = ngrun("--world=a.ngs --load=b.ngs -e 'x = 1'")
    assert.equals(1, rc)
    assert.matches("cannot be combined", out, 1, true)
    assert.matches("usage: ngrun", out, 1, true)
  end)
end)
