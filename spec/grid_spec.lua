-- rt.grid: every query with its space option, limits, result shapes, reusable result tables, errors.
local h = require "spec.helpers"
local ng = h.ng

describe("rt.grid", function()
  local rt, o, p, q, far
  before_each(function()
    rt = ng.Runtime()
    o = rt.tokens:create{ coords = { L1 = {0, 0, 0}, L2 = {1, 1, 1} } }
    p = rt.tokens:create{ coords = { L1 = {3, 4, 0}, L2 = {1.1, 1, 1} } }
    q = rt.tokens:create{ coords = { L1 = {0, 0, -3}, L2 = {-1, -1, -1} } }
    far = rt.tokens:create{ coords = { L1 = {100, 100, 100} } }
  end)
  after_each(function() rt:close() end)

  describe("range_query", function()
    it("returns { {id, distance}, ... } sorted by distance, ties by id", function()
      local hits = rt.grid:range_query({0, 0, 0}, 5)
      assert.same({{o, 0}, {q, 3}, {p, 5}}, hits)
    end)

    it("includes a token exactly at the radius, as far as the distance it reports", function()
      -- (0.3, 0.4, 0) is raw (30, 40, 0) in L1: reported 0.5 from the origin, in every space
      for _, space in ipairs{ "L1", "L2", "L3", "L8" } do
        local fresh = ng.Runtime()
        local a = fresh.tokens:create{ coords = { [space] = {0, 0, 0} } }
        local b = fresh.tokens:create{ coords = { [space] = {0.3, 0.4, 0} } }
        local wide = fresh.grid:range_query({0, 0, 0}, 1.0, { space = space })
        assert.same({{a, 0}, {b, 0.5}}, wide)
        assert.same(wide, fresh.grid:range_query({0, 0, 0}, 0.5, { space = space }))
        assert.same({{b, 0.5}}, fresh.grid:find_neighbors(a, 0.5, { space = space }))
        assert.same({{a, 0}}, fresh.grid:range_query({0, 0, 0}, 0.4999999, { space = space }))
        fresh:close()
      end
    end)

    it("queries the space given, by name, alias or number", function()
      local hits = rt.grid:range_query({1, 1, 1}, 0.5, { space = "L2" })
      assert.equals(2, #hits)
      assert.equals(o, hits[1][1])
      assert.equals(p, hits[2][1])
      assert.is_true(math.abs(hits[2][2] - 0.1) < 1e-6)
      assert.same(hits, rt.grid:range_query({1, 1, 1}, 0.5, { space = "sensory" }))
      assert.same(hits, rt.grid:range_query({1, 1, 1}, 0.5, { space = 2 }))
    end)

    it("sees only the tokens placed in its space", function()
      assert.same({}, rt.grid:range_query({0, 0, 0}, 1000, { space = "L8" }))
      local in_l2 = ng.util.ids(rt.grid:range_query({0, 0, 0}, 100, { space = "L2" }))
      table.sort(in_l2)
      assert.same({o, p, q}, in_l2)
      -- `far` is not in L2 (no phantom at the origin), only in L1
      assert.same({}, rt.grid:range_query({0, 0, 0}, 0.001, { space = "L2" }))
      assert.same({{far, 0}}, rt.grid:range_query({100, 100, 100}, 0.001))
    end)

    it("keeps only the first `limit` results", function()
      assert.same({{o, 0}, {q, 3}}, rt.grid:range_query({0, 0, 0}, 5, { limit = 2 }))
    end)

    it("fills a caller's table, reusing its pair tables and clearing the rest", function()
      local into = {}
      local got = rt.grid:range_query({0, 0, 0}, 5, { into = into })
      assert.equals(into, got)
      local first = into[1]
      got = rt.grid:range_query({3, 4, 0}, 1, { into = into })
      assert.equals(into, got)
      assert.equals(first, into[1]) -- the same pair table, refilled
      assert.same({{p, 0}}, into)
      assert.is_nil(into[2])
    end)

    it("recycles pair tables when the answer shrinks and grows again", function()
      local into = {}
      rt.grid:range_query({0, 0, 0}, 500, { into = into })
      local pairs_seen = {}
      for _, pair in ipairs(into) do pairs_seen[pair] = true end
      rt.grid:range_query({3, 4, 0}, 1, { into = into })
      assert.equals(1, #into)
      rt.grid:range_query({0, 0, 0}, 500, { into = into })
      assert.equals(4, #into)
      for _, pair in ipairs(into) do assert.is_true(pairs_seen[pair]) end
    end)

    it("allocates (almost) nothing per query into a reused table", function()
      for i = 1, 200 do rt.tokens:create{ coords = { L1 = {i % 20, i % 7, 0} } } end
      local into, opts = {}, {}
      opts.into = into
      local centres = {}
      for i = 1, 500 do centres[i] = {i % 20, i % 7, 0} end
      rt.grid:range_query({10, 3, 0}, 100, opts) -- grow once to the largest answer
      collectgarbage()
      collectgarbage("stop")
      local before = collectgarbage("count")
      for i = 1, 500 do rt.grid:range_query(centres[i], 1 + i % 5, opts) end
      local kb = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_true(kb < 16, string.format("%.1f KB for 500 queries", kb))
    end)

    it("raises for bad centres, radii and options", function()
      h.raises("bad argument #2 to 'range_query' (center must be a table {x, y, z}, got 5)",
               function() rt.grid:range_query(5, 1) end)
      h.raises("bad argument #2 to 'range_query' (center[2] must be a finite number, got nan)",
               function() rt.grid:range_query({0, 0 / 0, 0}, 1) end)
      h.raises("bad argument #3 to 'range_query' (radius must be >= 0, got -1)",
               function() rt.grid:range_query({0, 0, 0}, -1) end)
      h.raises("bad argument #3 to 'range_query' (radius must be a finite number, got inf)",
               function() rt.grid:range_query({0, 0, 0}, math.huge) end)
      h.raises("bad argument #4 to 'range_query' (unknown option 'spaec' (did you mean 'space'?))",
               function() rt.grid:range_query({0, 0, 0}, 1, { spaec = "L2" }) end)
      h.raises("bad argument #4 to 'range_query' (space must be 'L1'..'L8', a space alias or 1..8, got 'L0')",
               function() rt.grid:range_query({0, 0, 0}, 1, { space = "L0" }) end)
      h.raises("bad argument #4 to 'range_query' (limit must be an integer", function()
        rt.grid:range_query({0, 0, 0}, 1, { limit = -2 })
      end)
      h.raises("bad argument #4 to 'range_query' (into must be a table, got 'x')",
               function() rt.grid:range_query({0, 0, 0}, 1, { into = "x" }) end)
      h.raises("bad argument #4 to 'range_query' (options table expected, got 3)",
               function() rt.grid:range_query({0, 0, 0}, 1, 3) end)
    end)

    it("answers a huge radius without visiting every cell", function()
      assert.equals(4, #rt.grid:range_query({0, 0, 0}, 1e30))
    end)
  end)

  describe("find_neighbors", function()
    it("excludes the token itself", function()
      assert.same({{q, 3}, {p, 5}}, rt.grid:find_neighbors(o, 5))
      assert.same({{q, 3}}, rt.grid:find_neighbors(o, 5, { limit = 1 }))
      local hits = rt.grid:find_neighbors(o, 0.5, { space = "L2" })
      assert.equals(1, #hits)
      assert.equals(p, hits[1][1])
      assert.is_true(math.abs(hits[1][2] - 0.1) < 1e-6)
    end)

    it("accepts a Token handle", function()
      assert.same(rt.grid:find_neighbors(o, 5), rt.grid:find_neighbors(rt.tokens:get(o), 5))
    end)

    it("raises for a token that does not exist", function()
      h.raises("bad argument #2 to 'find_neighbors' (token 99 does not exist)",
               function() rt.grid:find_neighbors(99, 1) end)
      h.raises("bad argument #4 to 'find_neighbors' (unknown option 'into_'",
               function() rt.grid:find_neighbors(o, 1, { into_ = {} }) end)
    end)
  end)

  describe("nearest", function()
    it("returns the k nearest tokens", function()
      assert.same({{o, 0}, {q, 3}}, rt.grid:nearest({0, 0, 0}, 2))
      assert.equals(4, #rt.grid:nearest({0, 0, 0}, 10))
      assert.same({}, rt.grid:nearest({0, 0, 0}, 0))
      assert.equals(far, rt.grid:nearest({99, 99, 99}, 1)[1][1])
    end)

    it("takes space and into, but no limit", function()
      assert.equals(q, rt.grid:nearest({-1, -1, -1}, 1, { space = "L2" })[1][1])
      h.raises("bad argument #4 to 'nearest' (unknown option 'limit')",
               function() rt.grid:nearest({0, 0, 0}, 1, { limit = 1 }) end)
      h.raises("bad argument #3 to 'nearest' (k must be an integer 0..2147483647, got -1)",
               function() rt.grid:nearest({0, 0, 0}, -1) end)
    end)
  end)

  describe("box", function()
    it("returns tokens inside the closed box, by distance from its centre", function()
      local hits = rt.grid:box({-1, -1, -3}, {3, 4, 0})
      assert.equals(3, #hits)
      local ids = ng.util.ids(hits)
      table.sort(ids)
      assert.same({o, p, q}, ids)
      assert.same({o}, ng.util.ids(rt.grid:box({-1, -1, -1}, {1, 1, 1})))
      assert.equals(1, #rt.grid:box({-10, -10, -10}, {10, 10, 10}, { limit = 1 }))
      -- `far` is not placed in L2: the box's corner at the origin holds nothing
      assert.same({q}, ng.util.ids(rt.grid:box({-2, -2, -2}, {0, 0, 0}, { space = "L2" })))
    end)

    it("raises when max is below min", function()
      h.raises("bad argument #3 to 'box' (max must not be below min on any axis (axis 2))",
               function() rt.grid:box({0, 1, 0}, {1, 0, 1}) end)
    end)
  end)

  describe("info", function()
    it("gives count, cells, cell size and the true bounds of a space", function()
      local info = rt.grid:info()
      assert.equals("L1", info.space)
      assert.equals(4, info.count)
      assert.equals(10, info.cell_size)
      assert.same({0, 0, -3}, info.min)
      assert.same({100, 100, 100}, info.max)
      assert.is_true(info.cells >= 2)
      local l2 = rt.grid:info{ space = "L2" }
      assert.equals("L2", l2.space)
      assert.same({-1, -1, -1}, l2.min)
      h.raises("bad argument #2 to 'info' (unknown option 'limit')",
               function() rt.grid:info{ limit = 1 } end)
    end)

    it("follows moves, deletes and clear", function()
      rt.tokens:get(far):set_coords("L1", 1, 1, 1)
      assert.same({{far, h.f32(math.sqrt(3))}}, (function()
        local hits = rt.grid:range_query({0, 0, 0}, 2, { limit = 2 })
        hits[1] = hits[2]; hits[2] = nil
        hits[1][2] = h.f32(hits[1][2])
        return hits
      end)())
      rt.tokens:delete(o)
      assert.equals(3, rt.grid:info().count)
      rt.tokens:clear()
      local info = rt.grid:info()
      assert.equals(0, info.count)
      assert.same({0, 0, 0}, info.min)
    end)
  end)
end)
