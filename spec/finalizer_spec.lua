-- A finalizer that closes the runtime while a binding call runs, on every Lua (finalizers on
-- userdata exist in 5.1 and LuaJIT too): the call completes with its full result and the close
-- takes effect after it. finalizer54_spec.lua drives this through every call of the API with
-- 5.4's generational collector; this file runs the incremental collector that every Lua has.
local h = require "spec.helpers"
local ng = h.ng

local N = 1000
local function populated()
  local rt = ng.Runtime()
  for i = 1, N do
    rt.tokens:create{ coords = { L1 = { (i % 100) / 10, math.floor(i / 100) / 10, 0 } } }
  end
  return rt
end

describe("a finalizer that closes the runtime during a query", function()
  it("lets the query finish with every hit; later calls raise 'runtime is closed'", function()
    local rt = populated()
    local inside, finished_closed = false, 0
    local function fire()
      if inside and not rt:is_closed() then rt:close() end
    end
    local centre = { 5, 2.5, 0 } -- made here: nothing between `inside = true` and the call allocates
    h.gc_incremental(100, 1000) -- a collection always under way: finalizers run inside calls
    local ok, err = pcall(function()
      for _ = 1, 200 do
        if finished_closed >= 3 then break end
        for _ = 1, 50 do h.finalizable(fire) end
        local grid = rt.grid
        inside = true
        local ok_q, hits = pcall(grid.range_query, grid, centre, 100)
        inside = false
        if ok_q then -- the close, if any, came inside the call: it waited for the call to end
          assert.equals(N, #hits)
          if rt:is_closed() then finished_closed = finished_closed + 1 end
        else -- the close came first (entering a call may collect, as 5.4 does)
          assert.matches("runtime is closed", hits, 1, true)
        end
        if rt:is_closed() then
          h.raises("runtime is closed", function() return rt.tokens:count() end)
          rt = populated()
        end
      end
    end)
    inside = false
    h.gc_incremental(200, 200)
    collectgarbage()
    assert(ok, err)
    assert.is_true(finished_closed > 0, "no finalizer closed the runtime inside a query: the test tests nothing")
  end)
end)
