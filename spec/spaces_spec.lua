-- Spaces: scales as units, placement, exact read-back, update_scales all or nothing.
local h = require "spec.helpers"
local ng = h.ng

local function ids_of(hits)
  local ids = ng.util.ids(hits)
  table.sort(ids)
  return ids
end

describe("spaces", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.rmdir(dir) end)

  describe("a world with L1 at scale 100 and concepts only in L8", function()
    local rt, walls, concepts
    before_each(function()
      rt = ng.Runtime{ scales = { L1 = 100 } }
      walls, concepts = {}, {}
      for i = -3, 3 do
        walls[#walls + 1] = rt.tokens:create{ entity = "Object",
                                              coords = { L1 = {i * 10000, -30000 + i, 5} } }
      end
      for i = 1, 5 do
        concepts[#concepts + 1] = rt.tokens:create{ entity = "Concept",
                                                    coords = { L8 = {0, 0, i / 100} } }
      end
    end)
    after_each(function() rt:close() end)

    local function check(world)
      -- every L1 query returns L1 tokens only, distances in metres
      local all = ids_of(world.grid:range_query({0, 0, 0}, 1e6))
      assert.same(walls, all)
      local hits = world.grid:range_query({30000, -29997, 5}, 1)
      assert.same({{walls[7], 0}}, hits)
      local near = world.grid:nearest({0, 0, 0}, 3)
      assert.equals(walls[4], near[1][1])
      assert.equals(30000, near[1][2])
      assert.same({10000, -29999, 5}, {world.tokens:get(walls[5]):coords("L1")})
      assert.same({}, world.grid:range_query({0, 0, 0}, 1, { space = "L2" }))
      assert.same({}, world.grid:box({-1, -1, -1}, {1, 1, 1}))
      -- the concepts: in L8 only, and nowhere else
      assert.same(concepts, ids_of(world.grid:range_query({0, 0, 0}, 1, { space = "L8" })))
      for _, id in ipairs(concepts) do
        assert.same({"L8"}, world.tokens:get(id):spaces())
        assert.is_nil(world.tokens:get(id):coords("L1"))
      end
      assert.same({"L1"}, world.tokens:get(walls[1]):spaces())
    end

    it("answers L1 queries with L1 tokens only, in metres, and the same after save and load", function()
      check(rt)
      local path = dir .. "/world.ngs"
      assert.is_true(rt:save(path))
      local back = assert(ng.load(path))
      check(back)
      assert.equals(100, back.cdna:get_config().scales[1])
      back:close()
    end)

    it("refuses a coordinate beyond the scaled range, from create, set_coords and move", function()
      local before = h.state(rt)
      h.raises("bad argument #2 to 'create' (x of L1 must be within -32768..32767, got 4000000)",
               function() rt.tokens:create{ coords = { L1 = {4e6, 0, 0} } } end)
      h.raises("bad argument #4 to 'set_coords' (y of L1 must be within -32768..32767",
               function() rt.tokens:get(walls[1]):set_coords("L1", 0, -4e6, 0) end)
      h.raises("bad argument #4 to 'move' (entry 1: z of L1 must be within",
               function() rt.tokens:move("L1", {walls[1]}, {0, 0, 5e6}) end)
      assert.same(before, h.state(rt))
    end)

    it("update_scales with one coordinate that does not fit changes nothing", function()
      local before = h.state(rt)
      local path = dir .. "/before.ngs"
      assert.is_true(rt:save(path))
      local bytes = h.read(path)
      -- at scale 1, L1 holds +-327.67 m: the walls at 10 km and more do not fit
      h.raises("bad argument #2 to 'update_scales' (token " .. walls[1]
               .. " does not fit the new scale of L1: x -30000 must be within -327.68..327.67)",
               function() rt.cdna:update_scales{ L1 = 1 } end)
      assert.same(before, h.state(rt))
      assert.equals(100, rt.cdna:get_config().scales[1])
      assert.is_true(rt:save(path))
      local after = h.read(path)
      -- the same world, byte for byte but the save's own time stamp fields
      assert.equals(#bytes, #after)
      assert.same(ids_of(rt.grid:range_query({0, 0, 0}, 1e6)), walls)
    end)

    it("update_scales re-encodes every token of a changed space", function()
      assert.is_true(rt.cdna:update_scales{ L1 = 1000 })
      assert.equals(1000, rt.cdna:get_config().scales[1])
      assert.same({10000, -29990, 0}, {rt.tokens:get(walls[5]):coords("L1")}) -- 10 m steps
      assert.same({{walls[5], 0}}, rt.grid:range_query({10000, -29990, 0}, 0.5))
    end)
  end)

  describe("placement", function()
    local rt
    before_each(function() rt = ng.Runtime() end)
    after_each(function() rt:close() end)

    it("puts a token in the spaces it is placed in, and only there", function()
      local a = rt.tokens:create{ coords = { L1 = {1, 2, 3} } }
      local tok = rt.tokens:get(a)
      assert.same({"L1"}, tok:spaces())
      tok:set_coords("L3", 1, 1, 1)
      assert.same({"L1", "L3"}, tok:spaces())
      assert.same({{a, 0}}, rt.grid:range_query({1, 1, 1}, 0.1, { space = "L3" }))
      tok:unplace("L1")
      assert.same({"L3"}, tok:spaces())
      assert.same({}, rt.grid:range_query({1, 2, 3}, 1))
      assert.is_nil(tok:coords("L1"))
      rt.tokens:update(a, { coords = { L1 = {4, 5, 6} } })
      assert.same({{a, 0}}, rt.grid:range_query({4, 5, 6}, 0.1))
      tok:unplace("L2") -- not placed there: nothing happens
      assert.same({"L1", "L3"}, tok:spaces())
    end)

    it("keeps a token placed nowhere: stored, listed, connectable, found by no query", function()
      local a = rt.tokens:create{ weight = 2 }
      local b = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
      assert.same({}, rt.tokens:get(a):spaces())
      assert.same({a, b}, rt.tokens:list())
      assert.is_number(rt.connections:create(a, b))
      for s = 1, 8 do
        local hits = rt.grid:nearest({0, 0, 0}, 10, { space = s })
        for _, hit in ipairs(hits) do assert.not_equals(a, hit[1]) end
      end
      h.raises("is not placed in L1", function() rt.grid:find_neighbors(a, 1) end)
      local placed = rt:stats().placed
      assert.equals(1, placed.L1)
      assert.equals(0, placed.L8)
    end)
  end)

  describe("values read back as written", function()
    it("every L1 value k / 100, from Lua, and every field radius k / 100", function()
      local rt = ng.Runtime()
      local id = rt.tokens:create{}
      local tok = rt.tokens:get(id)
      local bad = 0
      for k = -32767, 32767, 3 do
        local v = k / 100
        tok:set_coords("L1", v, -v, v)
        local x = tok:coords("L1")
        if x ~= v then bad = bad + 1 end
      end
      assert.equals(0, bad)
      tok:set_coords("L1", 0.53, 0, 0)
      assert.equals(0.53, (tok:coords("L1")))
      for k = 0, 255 do
        tok.field_radius = k / 100
        assert.equals(k / 100, tok.field_radius)
        tok.field_strength = k / 255
        assert.equals(k / 255, tok.field_strength)
      end
      -- values off the steps truncate toward zero
      tok:set_coords("L1", 0.539, -0.539, 0)
      assert.same({0.53, -0.53, 0}, {tok:coords("L1")})
      rt:close()
    end)

    it("with a scale multiplier: k / scale * s reads back as itself", function()
      local rt = ng.Runtime{ scales = { L1 = 10, L2 = 0.5 } }
      local tok = rt.tokens:get(rt.tokens:create{})
      for k = -32768, 32767, 7 do
        local v = k / 100 * 10
        tok:set_coords("L1", v, 0, 0)
        assert.equals(v, (tok:coords("L1")))
        local w = k / 10000 * 0.5
        tok:set_coords("L2", w, 0, 0)
        assert.equals(w, (tok:coords("L2")))
      end
      rt:close()
    end)
  end)
end)
