-- rt.tokens:create{...} decodes common fields on a fast path: it must agree with the checked path.
local h = require "spec.helpers"
local ng = h.ng

describe("rt.tokens:create fast path", function()
  local rt
  before_each(function() rt = ng.Runtime() end)
  after_each(function() rt:close() end)

  -- create{coords} encodes inline; tok:set_coords goes through ng_token_set_coords.
  local function same_as_set_coords(space, x, y, z)
    local ok_c, id = pcall(rt.tokens.create, rt.tokens, { coords = { [space] = {x, y, z} } })
    local ref = rt.tokens:get(rt.tokens:create())
    local ok_s = pcall(ref.set_coords, ref, space, x, y, z)
    assert.equals(ok_s, ok_c, string.format("accept/reject differs for %s {%.17g, %.17g, %.17g}",
                                            tostring(space), x, y, z))
    if ok_c then
      assert.same({ref:coords(space)}, {rt.tokens:get(id):coords(space)})
    end
    return ok_c
  end

  it("encodes coordinates exactly as set_coords does, edges included", function()
    local accepted, rejected = 0, 0
    for s = 1, 8 do
      local msg = h.error_of(function() rt.tokens:create{ coords = { [s] = {1e9, 0, 0} } } end)
      local lo, hi = msg:match("within (%-?[%d.e+-]+)%.%.([%d.e+-]+)")
      lo, hi = tonumber(lo), tonumber(hi)
      assert.is_number(lo, msg)
      assert.is_number(hi, msg)
      local step = hi / 32767
      local edges = { hi, lo, hi + step / 2, lo - step / 2, hi + step, lo - step, hi * 1.0001,
                      step / 2, -step / 2, step * 1.5, -step * 1.5, 0.0, -0.0, 1e30, 1e300,
                      -1e300, math.maxinteger or 2 ^ 63, math.mininteger or -2 ^ 63 }
      for _, v in ipairs(edges) do
        if same_as_set_coords(s, v, -v, v / 3) then accepted = accepted + 1
        else rejected = rejected + 1 end
      end
      local seed = s * 7919
      for _ = 1, 200 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local v = (seed / 2147483648 * 2.2 - 1.1) * hi
        if same_as_set_coords(s, v, v / 7, -v / 11) then accepted = accepted + 1
        else rejected = rejected + 1 end
      end
    end
    assert.truthy(accepted > 1000, "most values are in range")
    assert.truthy(rejected > 100, "some values are out of range")
  end)

  it("takes space names, aliases and numbers, as before", function()
    local a = rt.tokens:get(rt.tokens:create{ coords = { L2 = {0.5, 0.25, -0.5} } })
    local b = rt.tokens:get(rt.tokens:create{ coords = { sensory = {0.5, 0.25, -0.5} } })
    local c = rt.tokens:get(rt.tokens:create{ coords = { [2] = {0.5, 0.25, -0.5} } })
    assert.same({0.5, 0.25, -0.5}, {a:coords(2)})
    assert.same({a:coords(2)}, {b:coords(2)})
    assert.same({a:coords(2)}, {c:coords(2)})
  end)

  it("finds names built at run time (interned strings)", function()
    local k = { "wei", "ght", "ent", "ity", "coo", "rds", "L", "1", "Con", "cept" }
    local id = rt.tokens:create{
      [k[1] .. k[2]] = 0.25, [k[3] .. k[4]] = k[9] .. k[10],
      [k[5] .. k[6]] = { [k[7] .. k[8]] = {1, 2, 3} },
    }
    local t = rt.tokens:get(id):to_table()
    assert.equals(0.25, t.weight)
    assert.equals("Concept", t.entity)
    assert.same({1, 2, 3}, t.coords.L1)
  end)

  it("does not confuse names of one kind with another", function()
    local cases = {
      { { entity = "L1" }, "entity must be an entity name or 0..15, got 'L1'" },
      { { entity = "weight" }, "entity must be an entity name or 0..15, got 'weight'" },
      { { Concept = 1 }, "unknown token field 'Concept'" },
      { { L1 = {0, 0, 0} }, "unknown token field 'L1'" },
      { { coords = { weight = {0, 0, 0} } }, "got 'weight'" },
      { { coords = { Concept = {0, 0, 0} } }, "got 'Concept'" },
      { { [string.rep("w", 60)] = 1 }, "unknown token field '" .. string.rep("w", 40) .. "...'" },
      { { [true] = 1 }, "token field names must be strings, got true" },
      { { [{}] = 1 }, "token field names must be strings, got table" },
      { { coords = { [true] = {0, 0, 0} } }, "space must be 'L1'..'L8'" },
      { { coords = { L1 = "abc" } }, "coords of L1 must be a table {x, y, z}, got 'abc'" },
      { { coords = { L1 = {1, 2, "3"} } }, "z of L1 must be a finite number, got '3'" },
      { { coords = { L1 = {1, 2, 3, 4} } }, "coords of L1 must be a table {x, y, z}" },
      { { weight = true }, "weight must be a finite number, got true" },
      { { entity = {} }, "entity must be an entity name or 0..15, got table" },
    }
    for _, case in ipairs(cases) do
      local msg = h.raises(case[2], function() rt.tokens:create(case[1]) end)
      assert.truthy(msg:find("bad argument #2 to 'create'", 1, true), msg)
    end
    assert.equals(0, rt.tokens:count())
  end)

  it("gives the slow-path forms the same result as the fast ones", function()
    local fast = rt.tokens:get(rt.tokens:create{ weight = 0.5, entity = "Goal" }):to_table()
    local slow = rt.tokens:get(rt.tokens:create{ weight = 0.5, entity = 9 }):to_table()
    fast.id, slow.id, fast.timestamp, slow.timestamp = nil, nil, nil, nil
    assert.same(fast, slow)
    assert.equals(100, rt.tokens:get(rt.tokens:create{ weight = 100 }).weight)
    assert.equals(0, rt.tokens:get(rt.tokens:create{ weight = 0 }).weight)
    h.raises("weight must be within 0..100, got 100.5", function()
      rt.tokens:create{ weight = 100.5 }
    end)
    -- the entity lands in the flags whatever the key order in the table
    for _ = 1, 20 do
      local t = { flags = 0x0F01 }
      t.entity = "Goal"
      t.weight = 2
      assert.equals(0x0901, rt.tokens:get(rt.tokens:create(t)).flags)
    end
  end)

  it("accepts nil or no table, ignores extra arguments, returns one value", function()
    assert.equals(1, select("#", rt.tokens:create()))
    assert.equals(1, select("#", rt.tokens:create(nil)))
    assert.equals(1, select("#", rt.tokens:create({ weight = 2 }, "extra", {})))
    assert.equals(2, rt.tokens:get(3).weight)
    assert.equals(3, rt.tokens:count())
  end)

  it("checks self before anything else", function()
    local mt = getmetatable(rt.tokens)
    if type(mt) == "table" then
      local fake = setmetatable({}, mt)
      h.raises("bad argument #1 to 'create' (neurograph.Tokens expected, got ",
               function() rt.tokens.create(fake, { weight = 1 }) end)
    end
    h.raises("bad argument #1 to 'create' (neurograph.Tokens expected, got no value)",
             function() rt.tokens.create() end)
    h.raises("bad argument #1 to 'count' (neurograph.Tokens expected, got no value)",
             function() rt.tokens.count() end)
    h.raises("bad argument #1 to 'create' (neurograph.Tokens expected, got nil)",
             function() rt.tokens.create(nil, {}) end)
    h.raises("bad argument #1 to 'create' (neurograph.Tokens expected, got neurograph.Runtime)",
             function() rt.tokens.create(rt, {}) end)
    local closed = ng.Runtime()
    local tokens = closed.tokens
    closed:close()
    h.raises("runtime is closed", function() tokens:create{ weight = 1 } end)
  end)

  it("keeps the stack balanced over many calls, errors and coroutines included", function()
    local co = coroutine.wrap(function()
      for i = 1, 3000 do
        local x = (i % 200) - 100
        if i % 7 == 0 then
          assert.is_false(pcall(rt.tokens.create, rt.tokens, { coords = { L1 = {x, 0, "z"} } }))
        else
          rt.tokens:create{ weight = 1.0, entity = "Concept", coords = { L1 = {x, x / 2, 1} } }
        end
        if i % 1000 == 0 then coroutine.yield(i) end
      end
      return "done"
    end)
    assert.equals(1000, co())
    assert.equals(2000, co())
    assert.equals(3000, co())
    assert.equals("done", co())
    assert.equals(3000 - 428, rt.tokens:count())
    local tok = rt.tokens:get(rt.tokens:count())
    assert.equals("Concept", tok.entity)
  end)
end)
