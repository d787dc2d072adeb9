-- Background saves from Lua: rt:save(path, {background = true}) returns a Save at once; the file
-- is the state at the call, written by another process; save:done() and save:wait() say how it
-- went (true, or nil plus a message; done() is false while it runs).
local h = require "spec.helpers"
local ng = h.ng

local function world(n)
  local rt = ng.Runtime()
  local prev
  for i = 1, n do
    local id = rt.tokens:create{ weight = i % 100, coords = { L1 = { i % 300, i % 7, 1 } } }
    if prev then rt.connections:create(prev, id, { type = "Cause" }) end
    prev = id
  end
  return rt
end

describe("rt:save(path, {background = true})", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.rmdir(dir) end)

  it("returns a Save whose file equals a synchronous save of the same state", function()
    local rt = world(500)
    assert.is_true(rt:save(dir .. "/sync.ngs"))
    local save = rt:save(dir .. "/bg.ngs", { background = true })
    assert.are.equal("userdata", type(save))
    assert.is_true(save:wait())
    assert.is_true(save:done())
    assert.are.equal(h.read(dir .. "/sync.ngs"), h.read(dir .. "/bg.ngs"))
    rt:close()
  end)

  it("saves the state at the call: later writes are not in the file", function()
    local rt = world(300)
    local save = rt:save(dir .. "/bg.ngs", { background = true })
    for _ = 1, 50 do rt.tokens:create{ weight = 1 } end
    rt.tokens:delete(1)
    assert.is_true(save:wait())
    local back = assert(ng.load(dir .. "/bg.ngs"))
    assert.are.equal(300, back.tokens:count())
    assert.is_not_nil(back.tokens:get(1))
    rt:close()
    back:close()
  end)

  it("answers done() with false until the save ends, then true", function()
    local rt = world(200)
    local save = rt:save(dir .. "/bg.ngs", { background = true })
    local first = save:done()
    assert.is_true(first == false or first == true)
    while save:done() == false do end
    assert.is_true(save:done())
    assert.is_true(save:wait())
    rt:close()
  end)

  it("answers nil and a message naming the path when it cannot start", function()
    local rt = world(10)
    local save, msg = rt:save(dir .. "/missing/bg.ngs", { background = true })
    assert.is_nil(save)
    assert.truthy(msg:find(dir .. "/missing/bg.ngs", 1, true))
    rt:close()
  end)

  it("answers nil and a message inside rt:atomic (its uncommitted writes are not saved)", function()
    local rt = world(10)
    local save, msg
    rt:atomic(function()
      rt.tokens:create{ weight = 1 }
      save, msg = rt:save(dir .. "/bg.ngs", { background = true })
    end)
    assert.is_nil(save)
    assert.truthy(msg:find("transaction", 1, true))
    rt:close()
  end)

  it("finishes a save whose Save was collected; closing the runtime waits for it", function()
    local rt = world(300)
    assert.is_true(rt:save(dir .. "/sync.ngs"))
    local save = rt:save(dir .. "/bg.ngs", { background = true })
    assert.truthy(tostring(save):find("neurograph.Save (", 1, true))
    save = nil -- luacheck: ignore 311 (dropped on purpose)
    collectgarbage()
    collectgarbage()
    rt:close()
    assert.are.equal(h.read(dir .. "/sync.ngs"), h.read(dir .. "/bg.ngs"))
  end)

  it("raises for a bad option and for a Save method called on something else", function()
    local rt = world(1)
    h.raises("unknown option 'backgroud'", rt.save, rt, dir .. "/x.ngs", { backgroud = true })
    h.raises("background must be a boolean", rt.save, rt, dir .. "/x.ngs", { background = 1 })
    h.raises("options must be a table", rt.save, rt, dir .. "/x.ngs", true)
    local save = rt:save(dir .. "/x.ngs", { background = true })
    h.raises("Save expected", save.done, {})
    assert.is_true(save:wait())
    assert.is_true(rt:save(dir .. "/y.ngs", { background = false })) -- synchronous
    rt:close()
  end)
end)
