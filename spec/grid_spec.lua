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

  describe("filters", function()
    -- A world of 300 tokens on a lattice with every kind of entity, flag and weight, and a
    -- brute-force answer for each query type to compare with.
    local F = ng.token_flags
    local recs, lattice
    local USER = {"USER_1", "USER_2", "USER_3", "USER_4", "LOCKED"}
    before_each(function()
      rt:close()
      rt = ng.Runtime()
      recs = {}
      lattice = {}
      math.randomseed(15)
      for i = 1, 300 do
        local flags = F.ACTIVE
        if i % 7 == 0 then flags = 0 end
        for k, name in ipairs(USER) do
          if h.band(h.shr(i, k - 1), 1) == 1 then flags = h.bor(flags, F[name]) end
        end
        local xyz = {math.random(-20, 20), math.random(-20, 20), math.random(-5, 5)}
        local e = i % 16
        local w = (i % 41) / 4
        local id = rt.tokens:create{ coords = { L1 = xyz }, flags = flags, entity = e, weight = w }
        recs[#recs + 1] = { id = id, xyz = xyz, flags = h.bor(flags, h.shl(e, 8)), entity = e, weight = w }
        lattice[#lattice + 1] = id
      end
    end)

    local function keeps(f, r)
      if not f.inactive and h.band(r.flags, F.ACTIVE) == 0 then return false end
      if f.entity then
        local ok = false
        for _, e in ipairs(type(f.entity) == "table" and f.entity or {f.entity}) do
          if e == r.entity or e == ng.entities[r.entity] then ok = true end
        end
        if not ok then return false end
      end
      for _, t in ipairs(f.tags or {}) do if h.band(r.flags, F[t]) == 0 then return false end end
      for _, t in ipairs(f.without or {}) do if h.band(r.flags, F[t]) ~= 0 then return false end end
      if f.weight and (r.weight < f.weight[1] or r.weight > f.weight[2]) then return false end
      for _, x in ipairs(f.exclude or {}) do if x == r.id then return false end end
      return true
    end

    -- The brute-force answer: the records for which inside(r) holds and the filter passes,
    -- then `where`, by (distance from c, id), the first n (nil: all).
    local function brute(f, c, inside, n)
      local hits = {}
      for _, r in ipairs(recs) do
        local dx, dy, dz = r.xyz[1] - c[1], r.xyz[2] - c[2], r.xyz[3] - c[3]
        local d = h.f32(math.sqrt(dx * dx + dy * dy + dz * dz))
        if inside(r, d) and keeps(f, r) and (not f.where or f.where(r.id, d)) then
          hits[#hits + 1] = {r.id, d}
        end
      end
      table.sort(hits, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
      if n and #hits > n then for i = #hits, n + 1, -1 do hits[i] = nil end end
      return hits
    end

    local function round(hits)
      for _, hit in ipairs(hits) do hit[2] = h.f32(hit[2]) end
      return hits
    end

    local FILTERS = {
      entity = { entity = "Object" },
      entities = { entity = {"Event", 3, "Goal"} },
      tags = { tags = {"USER_1"} },
      two_tags = { tags = {"USER_1", "USER_3"} },
      without = { without = {"LOCKED", "USER_2"} },
      weight = { weight = {2, 5.5} },
      exclude = { exclude = {1, 2, 3, 50, 9999} },
      inactive = { inactive = true },
      only_inactive = { inactive = true, without = {"ACTIVE"} },
      where = { where = function(id) return id % 3 ~= 0 end },
      combined = { entity = {0, 2, 4, 6, 8, 10, 12, 14}, tags = {"USER_2"}, without = {"USER_4"},
                   weight = {1, 8}, exclude = {20, 22}, inactive = true,
                   where = function(id, d) return id % 5 ~= 0 or d < 3 end },
    }

    for name, f in pairs(FILTERS) do
      local function opts(extra)
        local t = {}
        for k, v in pairs(f) do t[k] = v end
        for k, v in pairs(extra or {}) do t[k] = v end
        return t
      end

      it("range_query keeps what the filter '" .. name .. "' keeps", function()
        for _, c in ipairs({{0, 0, 0}, {10, -5, 2}}) do
          for _, r in ipairs({4.5, 12.5, 100}) do
            local want = brute(f, c, function(_, d) return d <= r end)
            assert.same(want, round(rt.grid:range_query(c, r, opts())))
            assert.same(brute(f, c, function(_, d) return d <= r end, 3),
                        round(rt.grid:range_query(c, r, opts{ limit = 3 })))
          end
        end
      end)

      it("find_neighbors keeps what the filter '" .. name .. "' keeps", function()
        local me = recs[10]
        local want = brute(f, me.xyz, function(r, d) return r.id ~= me.id and d <= 9.5 end)
        assert.same(want, round(rt.grid:find_neighbors(me.id, 9.5, opts())))
      end)

      it("nearest gives the k nearest that pass the filter '" .. name .. "'", function()
        for _, k in ipairs({1, 5, 40, 1000}) do
          local want = brute(f, {3, 3, 0}, function() return true end, k)
          assert.same(want, round(rt.grid:nearest({3, 3, 0}, k, opts())))
        end
      end)

      it("nearest_to gives the k nearest that pass the filter '" .. name .. "'", function()
        local me = recs[77]
        for _, k in ipairs({1, 6, 1000}) do
          local want = brute(f, me.xyz, function(r) return r.id ~= me.id end, k)
          assert.same(want, round(rt.grid:nearest_to(me.id, k, opts())))
        end
      end)

      it("box keeps what the filter '" .. name .. "' keeps", function()
        local lo, hi = {-8, -6, -5}, {9, 4, 5}
        local c = {0.5, -1, 0}
        local want = brute(f, c, function(r)
          for a = 1, 3 do if r.xyz[a] < lo[a] or r.xyz[a] > hi[a] then return false end end
          return true
        end)
        assert.same(want, round(rt.grid:box(lo, hi, opts())))
      end)
    end

    it("skips inactive tokens unless asked (new tokens are active)", function()
      local quiet = rt.tokens:create{ coords = { L1 = {50, 50, 50} } }
      assert.equals(quiet, rt.grid:nearest({50, 50, 50}, 1)[1][1])
      rt.tokens:get(quiet).flags = 0
      assert.is_not.equal(quiet, rt.grid:nearest({50, 50, 50}, 1)[1][1])
      assert.equals(quiet, rt.grid:nearest({50, 50, 50}, 1, { inactive = true })[1][1])
    end)

    it("calls where once per candidate, after the other filters", function()
      local seen = {}
      local hits = rt.grid:nearest({0, 0, 0}, 5, { tags = {"USER_1"}, where = function(id)
        assert.is_nil(seen[id])
        seen[id] = true
        return id % 4 == 1
      end })
      assert.equals(5, #hits)
      for id in pairs(seen) do
        assert.is_true(h.band(rt.tokens:get(id).flags, F.USER_1) ~= 0)
      end
    end)

    it("raises the predicate's error and stays usable", function()
      assert.has_error(function()
        rt.grid:range_query({0, 0, 0}, 5, { where = function() error("no", 0) end })
      end, "no")
      assert.is_true(#rt.grid:range_query({0, 0, 0}, 5) > 0)
    end)

    it("lets the predicate query the store", function()
      local hits = rt.grid:range_query({0, 0, 0}, 6, { where = function(id)
        return #rt.grid:find_neighbors(id, 1) > 0
      end })
      for _, hit in ipairs(hits) do assert.is_true(#rt.grid:find_neighbors(hit[1], 1) > 0) end
    end)

    it("raises naming the bad filter field", function()
      local bad = {
        { { entity = "Objct" }, "unknown entity 'Objct' (did you mean 'Object'?)" },
        { { entity = {} }, "entity must be an entity or a non-empty list of them, got {}" },
        { { tags = {"USER1"} }, "tags must be a token flag name ('ACTIVE' .. 'USER_4', as in "
                                .. "ng.token_flags) or a list of them, got 'USER1' (did you mean 'USER_1'?)" },
        { { without = 3 }, "without must be a token flag name" },
        { { weight = 3 }, "weight must be a range {min, max}, got 3" },
        { { weight = {5, 1} }, "weight must be a range {min, max} with min <= max, got {5, 1}" },
        { { weight = {0, 0 / 0} }, "weight[2] must be a finite number, got nan" },
        { { exclude = {"x"} }, "exclude must be a token id, a Token or a list of them, got 'x'" },
        { { exclude = {0} }, "exclude must be an integer 1.." },
        { { inactive = 1 }, "inactive must be a boolean, got 1" },
        { { positions = "yes" }, "positions must be a boolean, got 'yes'" },
        { { where = true }, "where must be a function(id, distance), got true" },
        { { wehre = print }, "unknown option 'wehre' (did you mean 'where'?)" },
      }
      for _, case in ipairs(bad) do
        h.raises("bad argument #4 to 'range_query' (" .. case[2],
                 function() rt.grid:range_query({0, 0, 0}, 1, case[1]) end)
        h.raises("bad argument #4 to 'nearest_to' (" .. case[2],
                 function() rt.grid:nearest_to(lattice[1], 1, case[1]) end)
      end
    end)
  end)

  describe("nearest_to", function()
    it("gives the k nearest to a token, the token itself excluded", function()
      assert.same({{q, 3}, {p, 5}}, rt.grid:nearest_to(o, 2))
      assert.same({{p, 5}}, rt.grid:nearest_to(rt.tokens:get(o), 1, { exclude = {q} }))
      assert.same({}, rt.grid:nearest_to(o, 0))
      assert.equals(p, rt.grid:nearest_to(o, 1, { space = "L2" })[1][1])
    end)

    it("raises for a token that does not exist", function()
      h.raises("bad argument #2 to 'nearest_to' (token 99 does not exist)",
               function() rt.grid:nearest_to(99, 1) end)
      h.raises("bad argument #3 to 'nearest_to' (k must be an integer 0..2147483647, got -1)",
               function() rt.grid:nearest_to(o, -1) end)
    end)
  end)

  describe("positions", function()
    it("fills each hit as {id, distance, x, y, z} in the query's space", function()
      assert.same({{o, 0, 0, 0, 0}, {q, 3, 0, 0, -3}},
                  rt.grid:range_query({0, 0, 0}, 4, { positions = true }))
      local hits = rt.grid:nearest_to(o, 1, { space = "L2", positions = true })
      assert.equals(p, hits[1][1])
      assert.same({1.1, 1, 1}, {hits[1][3], hits[1][4], hits[1][5]})
    end)

    it("reuses pair tables in `into` and drops positions when not asked again", function()
      local into = {}
      rt.grid:range_query({0, 0, 0}, 10, { into = into, positions = true })
      assert.equals(5, #into[2])
      rt.grid:range_query({0, 0, 0}, 10, { into = into })
      assert.same({{o, 0}, {q, 3}, {p, 5}}, into)
    end)

    it("allocates (almost) nothing per query into a reused table", function()
      for i = 1, 200 do rt.tokens:create{ coords = { L1 = {i % 20, i % 7, 0} } } end
      local opts = { into = {}, positions = true, tags = {"ACTIVE"}, exclude = {o, p} }
      local centres = {}
      for i = 1, 500 do centres[i] = {i % 20, i % 7, 0} end
      rt.grid:range_query({10, 3, 0}, 100, opts)
      collectgarbage()
      collectgarbage("stop")
      local before = collectgarbage("count")
      for i = 1, 500 do rt.grid:range_query(centres[i], 1 + i % 5, opts) end
      local kb = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_true(kb < 16, string.format("%.1f KB for 500 queries", kb))
    end)
  end)

  describe("rt.tokens:positions", function()
    it("gives flat x, y, z arrays, NaN for a token not placed there", function()
      local xyz, found = rt.tokens:positions("L1", {p, o, 999, rt.tokens:get(q)})
      assert.equals(12, #xyz)
      assert.equals(3, found)
      assert.same({3, 4, 0, 0, 0, 0}, {h.unpack(xyz, 1, 6)})
      for i = 7, 9 do assert.is_true(xyz[i] ~= xyz[i]) end
      assert.same({0, 0, -3}, {h.unpack(xyz, 10, 12)})
      local out = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
      assert.equals(out, rt.tokens:positions(2, {p}, out))
      assert.same({1.1, 1, 1}, out)
    end)

    it("raises for bad arguments", function()
      h.raises("bad argument #3 to 'positions' (ids must be a list of token ids or Tokens, got no value)",
               function() rt.tokens:positions("L1") end)
      h.raises("bad argument #3 to 'positions' (ids[2] must be a token id or a Token, got 'x')",
               function() rt.tokens:positions("L1", {o, "x"}) end)
      h.raises("bad argument #2 to 'positions' (space must be",
               function() rt.tokens:positions("L9", {o}) end)
      h.raises("bad argument #4 to 'positions' (out must be a table, got 5)",
               function() rt.tokens:positions("L1", {o}, 5) end)
    end)
  end)
end)
