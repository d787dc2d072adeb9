-- Durable worlds from Lua: ng.open(dir [, options]) journals every commit; rt:checkpoint().
local h = require "spec.helpers"
local ng = h.ng

local tmpdir, rmdir = h.tmpdir, h.rmdir

local function entries(d)
  local names = {}
  local p = io.popen("ls " .. h.quote(d))
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

describe("ng.open", function()
  local dir
  before_each(function() dir = tmpdir() .. "/world" end)
  after_each(function() rmdir(dir:match("^(.*)/world$")) end)

  it("creates a world that is an ordinary Runtime", function()
    local rt = assert(ng.open(dir))
    local a = rt.tokens:create{ weight = 3 }
    assert.equals(1, rt.tokens:count())
    assert.equals(3, rt.tokens:get(a).weight)
    rt:close()
    assert.same({ "journal-00000000000000000000.ngj", "snapshot-00000000000000000000.ngs" },
                entries(dir))
  end)

  it("keeps every commit across a reopen, ids included", function()
    local rt = assert(ng.open(dir, { sync = "always" }))
    local a = rt.tokens:create{ weight = 1, coords = { { 1, 2, 3 } } }
    local b = rt.tokens:create{ weight = 2 }
    local c = rt.connections:create(a, b, { type = "Cause", pull_strength = 0.5 })
    rt.tokens:delete(b)
    rt:atomic(function() rt.tokens:get(a).weight = 9 end)
    rt:close()
    rt = assert(ng.open(dir))
    assert.equals(1, rt.tokens:count())
    assert.equals(9, rt.tokens:get(a).weight)
    assert.is_nil(rt.connections:get(c))
    local d = rt.tokens:create()
    assert.is_true(d > b) -- the allocator continued, it did not restart
    assert.equals(1, #rt.grid:range_query({ 1, 2, 3 }, 0.1))
    rt:close()
  end)

  it("never journals a rolled-back transaction", function()
    local rt = assert(ng.open(dir))
    rt.tokens:create()
    pcall(rt.atomic, rt, function()
      rt.tokens:create()
      error("no")
    end)
    rt:close()
    rt = assert(ng.open(dir))
    assert.equals(1, rt.tokens:count())
    rt:close()
  end)

  it("checkpoints into a new snapshot and journal", function()
    local rt = assert(ng.open(dir, { sync = "off", interval_ms = 5 }))
    rt.tokens:create{ weight = 4 }
    assert.is_true(rt:checkpoint())
    rt.tokens:create{ weight = 5 }
    rt:close()
    assert.same({ "journal-00000000000000000001.ngj", "snapshot-00000000000000000001.ngs" },
                entries(dir))
    rt = assert(ng.open(dir))
    assert.equals(2, rt.tokens:count())
    rt:close()
  end)

  it("checkpoints in the background while commits go on", function()
    local rt = assert(ng.open(dir, { sync = "always" }))
    rt.tokens:create{ weight = 4 }
    local save = assert(rt:checkpoint{ background = true })
    rt.tokens:create{ weight = 5 } -- into journal 1, beside the save of snapshot 1
    assert.is_true(save:wait())
    assert.is_true(save:done())
    rt.tokens:create{ weight = 6 }
    rt:close() -- the checkpoint's end: snapshot 0 and journal 0 go
    assert.same({ "journal-00000000000000000001.ngj", "snapshot-00000000000000000001.ngs" },
                entries(dir))
    rt = assert(ng.open(dir))
    assert.equals(3, rt.tokens:count())
    assert.is_true(rt:checkpoint{ background = false })
    h.raises("unknown option 'backgrund' (did you mean 'background'?)", rt.checkpoint, rt,
             { backgrund = true })
    h.raises("background must be a boolean", rt.checkpoint, rt, { background = 1 })
    rt:close()
  end)

  it("checkpoints by itself past checkpoint_bytes", function()
    local rt = assert(ng.open(dir, { checkpoint_bytes = 4096 }))
    for i = 1, 200 do rt.tokens:create{ weight = i % 100 } end
    rt:close()
    assert.is_nil(entries(dir)[1]:match("00000000000000000000"))
    rt = assert(ng.open(dir))
    assert.equals(200, rt.tokens:count())
    rt:close()
  end)

  it("starts a new world from the options' profile and scales", function()
    local rt = assert(ng.open(dir, { scales = { L1 = 10 } }))
    rt:close()
    rt = assert(ng.open(dir))
    assert.equals(10, rt.cdna:get_config().scales[1])
    rt:close()
  end)

  it("answers a corrupt journal with nil and a message naming the offset", function()
    local rt = assert(ng.open(dir))
    for _ = 1, 3 do rt.tokens:create() end
    rt:close()
    local path = dir .. "/journal-00000000000000000000.ngj"
    local bytes = h.read(path)
    -- flip a byte inside the first record (after the 64-byte header)
    local i = 64 + 20
    h.write(path, bytes:sub(1, i - 1) .. string.char((bytes:byte(i) + 1) % 256) .. bytes:sub(i + 1))
    local ok, msg = ng.open(dir)
    assert.is_nil(ok)
    assert.matches("bad record at offset 64", msg)
  end)

  it("lets one runtime at a time open a world", function()
    local rt = assert(ng.open(dir))
    local again, msg = ng.open(dir)
    assert.is_nil(again)
    assert.matches("open in another runtime", msg)
    rt:close()
    rt = assert(ng.open(dir))
    rt:close()
  end)

  it("refuses bad options and misuse", function()
    h.raises("sync must be", ng.open, dir, { sync = "sometimes" })
    h.raises("unknown option", ng.open, dir, { fsync = "always" })
    h.raises("interval_ms", ng.open, dir, { interval_ms = 0 })
    local rt = ng.Runtime()
    h.raises("no journal", rt.checkpoint, rt)
    h.raises("no journal", rt.checkpoint, rt, { background = true })
    rt:close()
    rt = assert(ng.open(dir))
    h.raises("transaction", rt.atomic, rt, function() rt:checkpoint() end)
    rt:close()
  end)
end)
