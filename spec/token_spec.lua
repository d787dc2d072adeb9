-- rt.tokens and neurograph.Token handles: every call, return shape, error path and stale handle.
local h = require "spec.helpers"
local ng = h.ng

describe("rt.tokens", function()
  local rt
  before_each(function() rt = ng.Runtime() end)
  after_each(function() rt:close() end)

  describe("create", function()
    it("returns ascending integer ids starting at 1", function()
      assert.equals(1, rt.tokens:create())
      assert.equals(2, rt.tokens:create{})
      assert.equals(3, rt.tokens:create{ weight = 0.5 })
      assert.equals(math.type and math.type(1) or "number", (math.type or type)(rt.tokens:create()))
    end)

    it("defaults to weight 1.0, ACTIVE, entity Undefined, placed nowhere, timestamp now", function()
      local tok = rt.tokens:get(rt.tokens:create())
      assert.equals(1.0, tok.weight)
      assert.equals(ng.token_flags.ACTIVE, tok.flags)
      assert.equals("Undefined", tok.entity)
      assert.equals(0, tok.domain)
      assert.equals(0, tok.field_radius)
      assert.equals(0, tok.field_strength)
      for s = 1, 8 do assert.is_nil(tok:coords(s)) end
      assert.same({}, tok:spaces())
      assert.is_true(math.abs(tok.timestamp - rt:now()) <= 2)
    end)

    it("honours every field", function()
      local id = rt.tokens:create{
        weight = 0.75, flags = 0x1003, entity = "Concept", field_radius = 1.5,
        field_strength = 0.8, timestamp = 0x01020304, domain = 3,
        coords = { L1 = {1, 2, 3}, sensory = {0.1, -0.2, 0.3}, [3] = {4.5, 5.5, -6.5} },
      }
      local t = rt.tokens:get(id):to_table()
      assert.equals(0.75, t.weight)
      assert.equals(0x1503, t.flags) -- entity Concept (5) lives in bits 8-11
      assert.equals("Concept", t.entity)
      assert.equals(1.5, t.field_radius)
      assert.equals(204 / 255, t.field_strength)
      assert.equals(0x01020304, t.timestamp)
      assert.equals(3, t.domain)
      assert.same({1, 2, 3}, t.coords.L1)
      assert.same({0.1, -0.2, 0.3}, t.coords.L2)
      assert.same({4.5, 5.5, -6.5}, t.coords.L3)
      assert.is_nil(t.coords.L8) -- placed only where coords were given
      assert.same({"L1", "L2", "L3"}, rt.tokens:get(id):spaces())
    end)

    it("takes the entity as a number too, and applies it after flags", function()
      local tok = rt.tokens:get(rt.tokens:create{ entity = 9, flags = 0x0F01 })
      assert.equals("Goal", tok.entity)
      assert.equals(0x0901, tok.flags)
    end)

    it("accepts coordinates at the edges of the int16 range and rejects beyond", function()
      local id = rt.tokens:create{ coords = { L1 = {-327.68, 327.67, 0}, L8 = {3.2767, -3.2768, 0} } }
      local tok = rt.tokens:get(id)
      assert.same({-327.68, 327.67, 0}, {tok:coords("L1")})
      assert.same({3.2767, -3.2768, 0}, {tok:coords("L8")})
      h.raises("x of L1 must be within -327.68..327.67, got 327.68", function()
        rt.tokens:create{ coords = { L1 = {327.68, 0, 0} } }
      end)
      h.raises("z of L1 must be within", function()
        rt.tokens:create{ coords = { L1 = {0, 0, -327.69} } }
      end)
      h.raises("y of L8 must be within -3.2768..3.2767, got 3.2768", function()
        rt.tokens:create{ coords = { L8 = {0, 3.2768, 0} } }
      end)
      assert.equals(1, rt.tokens:count())
    end)

    it("raises 'bad argument #2 to 'create'' for bad values, naming what and what it got", function()
      local cases = {
        { { weight = 0 / 0 }, "bad argument #2 to 'create' (weight must be a finite number, got nan)" },
        { { weight = math.huge }, "weight must be a finite number, got inf" },
        { { weight = "1" }, "weight must be a finite number, got '1'" },
        { { weight = 250 }, "weight must be within 0..100, got 250" },
        { { weight = -1 }, "weight must be within 0..100, got -1" },
        { { flags = 0x10000 }, "flags must be an integer 0..65535, got 65536" },
        { { flags = 1.5 }, "flags must be an integer 0..65535, got 1.5" },
        { { entity = "Concpet" }, "unknown entity 'Concpet' (did you mean 'Concept'?)" },
        { { entity = "Zzz" }, "entity must be an entity name or 0..15, got 'Zzz'" },
        { { entity = 16 }, "entity must be an entity name or 0..15, got 16" },
        { { field_radius = 2.56 }, "field_radius must be within 0..2.55, got 2.56" },
        { { field_radius = -0.1 }, "field_radius must be within 0..2.55" },
        { { field_strength = 1.01 }, "field_strength must be within 0..1, got 1.01" },
        { { timestamp = -1 }, "timestamp must be an integer 0..4294967295, got -1" },
        { { domain = 16 }, "domain must be an integer 0..15, got 16" },
        { { coords = 5 }, "coords must be a table of spaces, got 5" },
        { { coords = { L9 = {0, 0, 0} } }, "space must be 'L1'..'L8', a space alias or 1..8, got 'L9'" },
        { { coords = { [0] = {0, 0, 0} } }, "got 0" },
        { { coords = { L1 = {1, 2} } }, "coords of L1 must be a table {x, y, z} of 3 numbers, got 2 values" },
        { { coords = { L1 = {1, "y", 3} } }, "y of L1 must be a finite number, got 'y'" },
        { { coords = { L1 = {1, 2, 0 / 0} } }, "z of L1 must be a finite number, got nan" },
        { { coords = { L1 = {0, 0, 0}, physical = {1, 1, 1} } }, "coords of L1 given twice" },
        { { wieght = 1 }, "unknown token field 'wieght' (did you mean 'weight'?)" },
        { { [1] = 1 }, "token field names must be strings, got 1" },
      }
      for _, case in ipairs(cases) do
        local msg = h.raises(case[2], function() rt.tokens:create(case[1]) end)
        assert.truthy(msg:find("bad argument #2 to 'create'", 1, true), msg)
      end
      h.raises("bad argument #2 to 'create' (table of token fields expected, got 'x')",
               function() rt.tokens:create("x") end)
      assert.equals(0, rt.tokens:count())
    end)

    it("leaves the ids unconsumed after an error", function()
      pcall(rt.tokens.create, rt.tokens, { weight = -5 })
      assert.equals(1, rt.tokens:create())
    end)

    it("checks self", function()
      h.raises("bad argument #1 to 'create' (neurograph.Tokens expected, got table)",
               function() rt.tokens.create({}, {}) end)
      h.raises("neurograph.Tokens expected, got neurograph.Grid",
               function() rt.tokens.create(rt.grid) end)
    end)
  end)

  describe("get", function()
    it("returns a Token handle, or nil when there is no such token", function()
      local id = rt.tokens:create()
      local tok = rt.tokens:get(id)
      assert.equals("userdata", type(tok))
      assert.equals(id, tok.id)
      assert.is_nil(rt.tokens:get(id + 1))
    end)

    it("accepts a Token handle as the id", function()
      local tok = rt.tokens:get(rt.tokens:create())
      assert.equals(tok, rt.tokens:get(tok))
    end)

    it("raises for ids that can never exist", function()
      h.raises("bad argument #2 to 'get' (token id must be an integer 1..9007199254740991, got 0)",
               function() rt.tokens:get(0) end)
      h.raises("token id must be an integer 1..9007199254740991, got 9007199254740992",
               function() rt.tokens:get(h.pow2(53)) end)
      h.raises("got -1", function() rt.tokens:get(-1) end)
      h.raises("got 1.5", function() rt.tokens:get(1.5) end)
      assert.is_nil(rt.tokens:get(0x1000000)) -- well-formed (slot 0, generation 1): a miss
      h.raises("got 'a'", function() rt.tokens:get("a") end)
      h.raises("got no value", function() rt.tokens:get() end)
    end)
  end)

  describe("update", function()
    it("writes the given fields only and returns true", function()
      local id = rt.tokens:create{ weight = 0.5, entity = "Object", coords = { L2 = {1, 1, 1} } }
      assert.is_true(rt.tokens:update(id, { weight = 0.9, coords = { L1 = {4, 5, 6} } }))
      local tok = rt.tokens:get(id)
      assert.equals(0.9, tok.weight)
      assert.same({4, 5, 6}, {tok:coords("L1")})
      assert.same({1, 1, 1}, {tok:coords("L2")})
      assert.equals("Object", tok.entity)
    end)

    it("changes the entity without touching the other flag bits", function()
      local id = rt.tokens:create{ flags = 0x2005 }
      rt.tokens:update(id, { entity = "Memory" })
      assert.equals(0x2A05, rt.tokens:get(id).flags)
    end)

    it("returns false when there is no such token", function()
      assert.is_false(rt.tokens:update(42, { weight = 0.5 }))
      assert.is_false(rt.tokens:update(42, { entity = "Goal" }))
    end)

    it("raises for an unknown key or a bad value, changing nothing", function()
      local id = rt.tokens:create{ weight = 0.5 }
      local before = h.state(rt)
      h.raises("bad argument #3 to 'update' (unknown token field 'weigth' (did you mean 'weight'?))",
               function() rt.tokens:update(id, { weigth = 1 }) end)
      h.raises("bad argument #3 to 'update' (flags must be an integer 0..65535, got -1)",
               function() rt.tokens:update(id, { weight = 0.7, flags = -1 }) end)
      h.raises("bad argument #3 to 'update' (table of token fields expected, got no value)",
               function() rt.tokens:update(id) end)
      assert.same(before, h.state(rt))
    end)
  end)

  describe("delete", function()
    it("returns true, then false", function()
      local id = rt.tokens:create()
      assert.is_true(rt.tokens:delete(id))
      assert.is_false(rt.tokens:delete(id))
      assert.equals(0, rt.tokens:count())
    end)

    it("takes the token's connections with it", function()
      local a, b, c = rt.tokens:create(), rt.tokens:create(), rt.tokens:create()
      rt.connections:create(a, b)
      rt.connections:create(c, a)
      local keep = rt.connections:create(b, c)
      rt.tokens:delete(a)
      assert.same({keep}, rt.connections:list())
    end)
  end)

  describe("list", function()
    it("returns ids in ascending order with stable pages", function()
      for _ = 1, 10 do rt.tokens:create() end
      rt.tokens:delete(4)
      assert.same({1, 2, 3, 5, 6, 7, 8, 9, 10}, rt.tokens:list())
      assert.same({1, 2, 3}, rt.tokens:list(3))
      assert.same({5, 6, 7}, rt.tokens:list(3, 3))
      assert.same({10}, rt.tokens:list(3, 8))
      assert.same({}, rt.tokens:list(3, 20))
      assert.same({}, rt.tokens:list(0))
    end)

    it("fills a given table, clearing what is past the result", function()
      for _ = 1, 3 do rt.tokens:create() end
      local into = {9, 9, 9, 9, 9}
      local got = rt.tokens:list(nil, 1, into)
      assert.equals(into, got)
      assert.same({2, 3}, got)
    end)

    it("raises for bad limits and offsets", function()
      h.raises("bad argument #2 to 'list' (limit must be an integer 0..2147483647, got -1)",
               function() rt.tokens:list(-1) end)
      h.raises("bad argument #3 to 'list' (offset must be an integer", function() rt.tokens:list(1, 0.5) end)
      h.raises("bad argument #4 to 'list' (result table expected, got 1)",
               function() rt.tokens:list(1, 0, 1) end)
    end)
  end)

  describe("count and clear", function()
    it("clear returns the numbers removed and ids are not reused", function()
      local a, b = rt.tokens:create(), rt.tokens:create()
      rt.connections:create(a, b)
      local nt, nc = rt.tokens:clear()
      assert.equals(2, nt)
      assert.equals(1, nc)
      assert.equals(0, rt.tokens:count())
      assert.equals(0, rt.connections:count())
      assert.equals(3, rt.tokens:create())
    end)
  end)

  describe("iter", function()
    it("visits every token in ascending id order with a handle", function()
      for _ = 1, 5 do rt.tokens:create() end
      rt.tokens:delete(2)
      local seen = {}
      for id, tok in rt.tokens:iter() do
        assert.equals(id, tok.id)
        seen[#seen + 1] = id
      end
      assert.same({1, 3, 4, 5}, seen)
    end)

    it("follows the documented rule for changes made during the loop", function()
      -- deleting the current token or one not yet reached is safe (the latter is skipped);
      -- tokens created during the loop are visited, since their ids are higher.
      for _ = 1, 5 do rt.tokens:create() end
      local seen = {}
      for id in rt.tokens:iter() do
        seen[#seen + 1] = id
        if id == 1 then rt.tokens:delete(1); rt.tokens:delete(3) end
        if id == 5 then rt.tokens:create() end
      end
      assert.same({1, 2, 4, 5, 6}, seen)
    end)

    it("sees only later tokens after a clear inside the loop", function()
      for _ = 1, 3 do rt.tokens:create() end
      local seen = {}
      for id in rt.tokens:iter() do
        seen[#seen + 1] = id
        if id == 1 then rt.tokens:clear(); rt.tokens:create() end
      end
      assert.same({1, 4}, seen)
    end)

    it("ends at once on an empty store", function()
      for _ in rt.tokens:iter() do error("not empty") end
    end)
  end)

  describe("exists", function()
    it("answers without raising", function()
      local id = rt.tokens:create()
      assert.is_true(rt.tokens:exists(id))
      assert.is_false(rt.tokens:exists(id + 1))
    end)
  end)

  describe("move", function()
    local function positions(space, n)
      local out = {}
      for id = 1, n do out[id] = {rt.tokens:get(id):coords(space)} end
      return out
    end

    it("moves every listed token in one call, and the grid sees it", function()
      for i = 1, 50 do rt.tokens:create{coords = {L1 = {i, 0, 0}, L2 = {0, 0, i / 100}}} end
      assert.equals(1, #rt.grid:range_query({1, 0, 0}, 0.5)) -- builds the L1 index
      assert.equals(3, rt.tokens:move("L1", {3, 7, 9}, {100, 1, 2, -5.5, 0, 0, 9, 9, 9}))
      assert.same({100, 1, 2}, {rt.tokens:get(3):coords("L1")})
      assert.same({-5.5, 0, 0}, {rt.tokens:get(7):coords("L1")})
      assert.same({9, 9, 9}, {rt.tokens:get(9):coords("L1")})
      assert.same({0, 0, 0.03}, {rt.tokens:get(3):coords("L2")}) -- other spaces untouched
      local near = rt.grid:range_query({100, 1, 2}, 0.5)
      assert.equals(1, #near)
      assert.equals(3, near[1][1])
      assert.equals(0, #rt.grid:range_query({3, 0, 0}, 0.5)) -- the old place is empty
      assert.equals(2, rt.tokens:move(2, {1, 2}, {0.5, 0.5, 0.5, 0.25, 0, 0})) -- space by number
      assert.same({0.5, 0.5, 0.5}, {rt.tokens:get(1):coords("L2")})
    end)

    it("keeps the last position of an id listed twice, and accepts an empty frame", function()
      rt.tokens:create()
      assert.equals(2, rt.tokens:move("L1", {1, 1}, {1, 2, 3, 4, 5, 6}))
      assert.same({4, 5, 6}, {rt.tokens:get(1):coords("L1")})
      assert.equals(0, rt.tokens:move("L1", {}, {}))
    end)

    it("takes Token handles as ids", function()
      local tok = rt.tokens:get(rt.tokens:create())
      rt.tokens:move("L3", {tok}, {7, 8, 9})
      assert.same({7, 8, 9}, {tok:coords("L3")})
    end)

    it("raises for a bad entry and moves nothing", function()
      for i = 1, 5 do rt.tokens:create{coords = {L1 = {i, i, i}}} end
      local before = positions("L1", 5)
      local cases = {
        {{"L9", {1}, {0, 0, 0}}, "bad argument #2 to 'move'"},
        {{"L1", 7, {0, 0, 0}}, "bad argument #3 to 'move' %(array of token ids expected, got 7%)"},
        {{"L1", {1}, "xyz"}, "bad argument #4 to 'move' %(array of coordinates"},
        {{"L1", {1, 2}, {1, 1, 1, 2, 2}}, "%(6 numbers expected %(x, y, z for each of 2 ids%), got 5%)"},
        {{"L1", {1, 99}, {1, 1, 1, 2, 2, 2}}, "bad argument #3 to 'move' %(entry 2: no token 99%)"},
        {{"L1", {1, "x"}, {1, 1, 1, 2, 2, 2}}, "bad argument #3 to 'move' %(token id"},
        {{"L1", {1, 2}, {1, 1, 1, 2, 2, 1e9}}, "bad argument #4 to 'move' %(entry 2: z of L1 must be within"},
        {{"L1", {1, 2}, {1, 1, 1, 0 / 0, 2, 2}}, "bad argument #4 to 'move'"},
      }
      for _, c in ipairs(cases) do
        local ok, err = pcall(rt.tokens.move, rt.tokens, h.unpack(c[1]))
        assert.is_false(ok)
        assert.matches(c[2], err)
        assert.same(before, positions("L1", 5))
      end
    end)

    it("makes no garbage frame after frame", function()
      for i = 1, 200 do rt.tokens:create{coords = {L1 = {i % 17, i % 13, i % 11}}} end
      rt.grid:range_query({0, 0, 0}, 1)
      local ids, xyz = {}, {}
      for i = 1, 200 do ids[i] = i end
      local function frame(f)
        for i = 1, 200 do
          xyz[3 * i - 2], xyz[3 * i - 1], xyz[3 * i] = (i + f) % 17, (i * f) % 13, f % 11
        end
        rt.tokens:move("L1", ids, xyz)
      end
      -- LuaJIT: compiled traces are collectable objects, and the first call after a full
      -- collection allocates inside the VM (none with -joff): count the binding's garbage only
      local jit = rawget(_G, "jit")
      if jit then jit.off(frame, true) end
      frame(1) -- the first frame sizes the runtime's reused buffers
      collectgarbage("collect")
      if jit then frame(1) end
      -- Two windows of 49 frames: garbage made frame after frame shows in both, a one-off
      -- allocation in one only (564 bytes, once, on Lua 5.1 in a full run of the specs; not
      -- seen again in 35 runs).
      local grown = {}
      for w = 1, 2 do
        collectgarbage("stop")
        local before = collectgarbage("count")
        for f = 2, 50 do frame(f) end
        grown[w] = (collectgarbage("count") - before) * 1024
        collectgarbage("restart")
      end
      assert.is_true(math.min(grown[1], grown[2]) < 64,
        ("%d and %d bytes of garbage in two windows of 49 frames"):format(grown[1], grown[2]))
      assert.same({(200 + 50) % 17, (200 * 50) % 13, 50 % 11}, {rt.tokens:get(200):coords("L1")})
    end)
  end)
end)

describe("neurograph.Token", function()
  local rt, tok
  before_each(function()
    rt = ng.Runtime()
    tok = rt.tokens:get(rt.tokens:create{ weight = 0.5, coords = { L1 = {1, 2, 3} } })
  end)
  after_each(function() rt:close() end)

  it("reads every field by name", function()
    assert.equals(1, tok.id)
    assert.equals(0.5, tok.weight)
    assert.equals(1, tok.flags)
    assert.equals("Undefined", tok.entity)
    assert.equals(0, tok.field_radius)
    assert.equals(0, tok.field_strength)
    assert.equals("number", (math.type or type)(tok.timestamp) and "number")
    assert.equals(0, tok.domain)
  end)

  it("writes fields through to the store", function()
    tok.weight = 0.9
    tok.flags = 0x0003
    tok.entity = "Sensor"
    tok.field_radius = 2.0
    tok.field_strength = 1.0
    tok.timestamp = 12345
    tok.domain = 15
    local again = rt.tokens:get(1)
    assert.equals(0.9, again.weight)
    assert.equals(0x0B03, again.flags)
    assert.equals("Sensor", again.entity)
    assert.equals(2.0, again.field_radius)
    assert.equals(1.0, again.field_strength)
    assert.equals(12345, again.timestamp)
    assert.equals(15, again.domain)
  end)

  it("stores weights as float32 and reads back the shortest decimal", function()
    tok.weight = 1 / 3
    assert.equals(h.as_stored(1 / 3), tok.weight)
    assert.equals(h.f32(1 / 3), h.f32(tok.weight))
  end)

  it("raises on bad writes, read-only and unknown fields, changing nothing", function()
    local before = h.state(rt)
    h.raises("bad argument #3 to '__newindex' (weight must be within 0..100, got 101)",
             function() tok.weight = 101 end)
    h.raises("weight must be a finite number, got nan", function() tok.weight = 0 / 0 end)
    h.raises("field 'id' of neurograph.Token is read-only", function() tok.id = 5 end)
    h.raises("neurograph.Token has no field 'wieght'", function() tok.wieght = 1 end)
    h.raises("neurograph.Token has no field 'wieght'", function() return tok.wieght end)
    h.raises("cannot assign to method 'coords' of neurograph.Token", function() tok.coords = 1 end)
    assert.same(before, h.state(rt))
  end)

  it("coords(space) returns x, y, z; L1 by default; any space spelling", function()
    assert.same({1, 2, 3}, {tok:coords()})
    assert.same({1, 2, 3}, {tok:coords("L1")})
    assert.same({1, 2, 3}, {tok:coords("physical")})
    assert.same({1, 2, 3}, {tok:coords(1)})
    assert.same({nil}, {tok:coords("abstract")}) -- not placed there
    h.raises("bad argument #2 to 'coords' (space must be", function() tok:coords(9) end)
  end)

  it("set_coords writes one space and truncates like the codec", function()
    tok:set_coords("L2", 0.12345, -1.5, 3.2767)
    assert.same({0.1234, -1.5, 3.2767}, {tok:coords("L2")})
    assert.same({1, 2, 3}, {tok:coords("L1")})
    tok:set_coords(1, -1.555, 1.999, 10.5)
    assert.same({-1.55, 1.99, 10.5}, {tok:coords(1)})
  end)

  it("set_coords raises for out-of-range values and changes nothing", function()
    local before = h.state(rt)
    h.raises("bad argument #4 to 'set_coords' (y of L3 must be within -32.768..32.767, got 40)",
             function() tok:set_coords("L3", 1, 40, 1) end)
    h.raises("bad argument #5 to 'set_coords' (z of L1 must be a finite number, got no value)",
             function() tok:set_coords("L1", 1, 2) end)
    assert.same(before, h.state(rt))
  end)

  it("update(fields) works like rt.tokens:update", function()
    assert.is_true(tok:update{ weight = 0.25, entity = "Rule" })
    assert.equals(0.25, tok.weight)
    assert.equals("Rule", tok.entity)
  end)

  it("to_table returns every field and the spaces the token is placed in", function()
    local t = tok:to_table()
    assert.same({"coords", "domain", "entity", "field_radius", "field_strength", "flags", "id",
                 "timestamp", "weight"}, (function()
      local keys = {}
      for k in pairs(t) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    for s = 1, 8 do assert.equals(s == 1, t.coords[ng.spaces[s]] ~= nil) end
  end)

  it("connections(direction) lists connection ids ascending", function()
    local b = rt.tokens:create()
    local c1 = rt.connections:create(1, b)
    local c2 = rt.connections:create(b, 1)
    local c3 = rt.connections:create(1, b, { type = "Cause" })
    assert.same({c1, c2, c3}, tok:connections())
    assert.same({c1, c2, c3}, tok:connections("both"))
    assert.same({c1, c3}, tok:connections("out"))
    assert.same({c2}, tok:connections("in"))
    h.raises("bad argument #2 to 'connections' (direction must be 'out', 'in' or 'both', got 'up')",
             function() tok:connections("up") end)
  end)

  it("delete and exists", function()
    assert.is_true(tok:exists())
    assert.is_true(tok:delete())
    assert.is_false(tok:exists())
    assert.is_false(tok:delete())
  end)

  it("raises 'token N no longer exists' once its record is deleted", function()
    rt.tokens:delete(1)
    assert.equals(1, tok.id) -- the id stays readable, for messages
    for _, f in ipairs{
      function() return tok.weight end,
      function() tok.weight = 0.5 end,
      function() return tok:coords() end,
      function() tok:set_coords(1, 0, 0, 0) end,
      function() return tok:to_table() end,
      function() return tok:connections() end,
      function() return tok:update{ weight = 1 } end,
    } do
      h.raises("token 1 no longer exists", f)
    end
    assert.equals(0, rt.tokens:count())
  end)

  it("has __tostring, __eq and __name", function()
    assert.equals("neurograph.Token(1)", tostring(tok))
    assert.equals(tok, rt.tokens:get(1))
    assert.not_equals(tok, rt.tokens:get(rt.tokens:create()))
    assert.equals("neurograph.Token", getmetatable(tok).__name)
  end)
end)
