-- Ids (issue 13): 64-bit ids below 2^53, slots reused behind generations, stale ids refused
-- everywhere, the order deterministic and kept by snapshots.
local ng = require "neurograph"
local h = require "spec.helpers"

local SLOT = 0xFFFFFF

-- Frees `n` fresh slots: creates n tokens, then deletes them (in creation order).
local function churn(rt, n)
  local ids = {}
  for i = 1, n do ids[i] = rt.tokens:create() end
  for i = 1, n do assert.is_true(rt.tokens:delete(ids[i])) end
  return ids
end

describe("ids", function()
  it("are 1, 2, 3, ... in a runtime that never deletes", function()
    local rt = ng.Runtime()
    for i = 1, 100 do assert.equals(i, rt.tokens:create()) end
    local a = rt.tokens:create()
    assert.equals(1, rt.connections:create(1, a))
    assert.equals(2, rt.connections:create(2, a))
    rt:close()
  end)

  it("do not hand a freed slot back until more than 1024 are free", function()
    local rt = ng.Runtime()
    local first = rt.tokens:create()
    rt.tokens:delete(first)
    local ids = churn(rt, 1023) -- 1024 slots free: still fresh slots
    assert.equals(1024, ids[1023])
    assert.equals(1025, rt.tokens:create())
    assert.equals(1024, rt:stats().token_slots_free)
    rt.tokens:delete(1025) -- 1025 free: the next create reuses the smallest, one epoch up
    local reused = rt.tokens:create()
    assert.equals(first, h.band(reused, SLOT))
    assert.equals(1, h.shr(reused, 24))
    assert.is_true(reused > 1025)
    assert.is_true(reused < 2 ^ 53)
    rt:close()
  end)

  it("refuse stale ids and handles after their slot was reused, and across save and load", function()
    local rt = ng.Runtime()
    local old = rt.tokens:create{ weight = 2, coords = { L1 = {1, 1, 1} } }
    local other = rt.tokens:create{ coords = { L1 = {1, 1, 1} } }
    local link = rt.connections:create(old, other)
    local tok = rt.tokens:get(old)
    local conn = rt.connections:get(link)
    rt.tokens:delete(old)
    churn(rt, 1100)
    local new = rt.tokens:create{ coords = { L1 = {1, 1, 1} } }
    assert.equals(h.band(old, SLOT), h.band(new, SLOT)) -- the same slot, a new generation
    assert.are_not.equal(old, new)
    local path = os.tmpname()
    for round = 1, 2 do
      assert.is_nil(rt.tokens:get(old))
      assert.is_false(rt.tokens:update(old, { weight = 1 }))
      assert.is_false(rt.tokens:delete(old))
      assert.is_false(rt.tokens:exists(old))
      assert.is_nil(rt.connections:get(link))
      h.raises("does not exist", function() rt.connections:create(old, other) end)
      -- queries return current ids only
      local hits = rt.grid:range_query({1, 1, 1}, 0.5)
      assert.equals(2, #hits)
      assert.equals(other, hits[1][1])
      assert.equals(new, hits[2][1])
      if round == 1 then
        h.raises("token " .. old .. " no longer exists", function() return tok.weight end)
        h.raises("no longer exists", function() return conn.from end)
        assert.is_true(rt:save(path))
        rt:close()
        rt = assert(ng.load(path))
      end
    end
    rt:close()
    os.remove(path)
  end)

  it("continue after save and load exactly as without it", function()
    local function history(rt, reload)
      local path = os.tmpname()
      local out = {}
      for round = 1, 3 do
        local ids = churn(rt, 700)
        out[#out + 1] = ids[1]
        out[#out + 1] = ids[700]
        if reload then
          assert.is_true(rt:save(path))
          rt:close()
          rt = assert(ng.load(path))
        end
        out[#out + 1] = rt.tokens:create()
        out[#out + 1] = round
      end
      os.remove(path)
      local s = rt:stats()
      out[#out + 1] = s.token_slots_free
      out[#out + 1] = s.token_slots_retired
      rt:close()
      return out
    end
    assert.same(history(ng.Runtime(), false), history(ng.Runtime(), true))
  end)

  it("report live, free and retired slots", function()
    local rt = ng.Runtime()
    churn(rt, 10)
    rt.tokens:create()
    local s = rt:stats()
    assert.equals(1, s.tokens)
    assert.equals(10, s.token_slots_free)
    assert.equals(0, s.token_slots_retired)
    assert.equals(12, s.next_token_id)
    rt:close()
  end)

  it("refuse ids that are no ids, naming the argument", function()
    local rt = ng.Runtime()
    for _, bad in ipairs({ 0, -1, 1.5, h.pow2(53), "x" }) do
      h.raises("bad argument #2 to 'get'", function() rt.tokens:get(bad) end)
      h.raises("bad argument #2 to 'delete'", function() rt.tokens:delete(bad) end)
      h.raises("bad argument #2 to 'get'", function() rt.connections:get(bad) end)
    end
    rt:close()
  end)
end)
