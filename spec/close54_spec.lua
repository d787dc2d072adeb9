-- Lua 5.4's <close> on a runtime: only 5.4 parses this file, so CMake leaves it out (busted
-- --exclude-pattern=54_spec) on 5.3, 5.1 and LuaJIT, where scripts call rt:close() instead.
local h = require "spec.helpers"
local ng = h.ng

describe("rt:close() through <close>", function()
  it("happens at the end of a <close> block, even on error", function()
    local kept
    local ok = pcall(function()
      local rt <close> = ng.Runtime()
      kept = rt.tokens:get(rt.tokens:create())
      error("boom")
    end)
    assert.is_false(ok)
    h.raises("runtime is closed", function() return kept.weight end)
  end)

  it("closes a runtime from ng.load like any other", function()
    local rt = ng.Runtime()
    local ids = {}
    for i = 1, 5 do ids[i] = rt.tokens:create{ coords = { L1 = { i * 0.01, 0, 0 } } } end
    for i = 1, 4 do rt.connections:create(ids[i], ids[i + 1]) end
    local path = os.tmpname()
    assert.is_true(rt:save(path))
    local kept
    do
      local back <close> = assert(ng.load(path))
      local hits = back.grid:find_neighbors(ids[1], 1.0)
      assert.is_true(#hits > 0)
      assert.is_true(back.tokens:delete(ids[2]))
      assert.equals(rt.connections:count() - 2, back.connections:count())
      kept = back
    end
    assert.is_true(kept:is_closed())
    os.remove(path)
    rt:close()
  end)
end)
