-- rt.graph: breadth-first walks, neighbourhoods, cheapest paths and spreading activation on
-- hand-built graphs whose results are derived by hand below.
local h = require "spec.helpers"
local ng = h.ng

-- Tokens 1..6 in L1 at x = 0, 1, 1, 2, 3, 9 (token 3 at y = 1), and the links, in id order:
--   c1 1 -> 2 (confidence 1), c2 1 -> 3 (1), c3 2 -> 4 (0.2), c4 3 -> 4 (1), c5 4 -> 5 (0.5),
--   c6 6 -> 1 (0.5)
local function hand_graph()
  local rt = ng.Runtime()
  local pos = { {0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {2, 0, 0}, {3, 0, 0}, {9, 0, 0} }
  for i = 1, 6 do rt.tokens:create{ coords = { L1 = pos[i] } } end
  local conf = {}
  local function link(a, b, c)
    local id = rt.connections:create(a, b, { confidence = c })
    conf[#conf + 1] = rt.connections:get(id).confidence -- as stored: a u8 fraction
  end
  link(1, 2, 1); link(1, 3, 1); link(2, 4, 0.2); link(3, 4, 1); link(4, 5, 0.5); link(6, 1, 0.5)
  return rt, conf
end

local function ids_of(pairs_list)
  local out = {}
  for i, p in ipairs(pairs_list) do out[i] = p[1] end
  return out
end

local function near(want, got)
  assert.is_true(math.abs(want - got) < 1e-9, string.format("wanted %.17g, got %.17g", want, got))
end

describe("rt.graph", function()
  local rt, conf
  before_each(function() rt, conf = hand_graph() end)
  after_each(function() rt:close() end)

  describe("bfs", function()
    it("walks outgoing links in BFS order, neighbours in connection id order, with depths", function()
      assert.same({ {1, 0}, {2, 1}, {3, 1}, {4, 2}, {5, 3} }, rt.graph:bfs(1))
    end)

    it("follows incoming links, or both, and stops at max_depth", function()
      assert.same({1, 6}, ids_of(rt.graph:bfs(1, { dir = "in" })))
      -- from 4 both ways: 2, 3 (in), 5 (out) at 1; 1 through 2 at 2; 6 through 1 at 3
      assert.same({ {4, 0}, {2, 1}, {3, 1}, {5, 1}, {1, 2}, {6, 3} }, rt.graph:bfs(4, { dir = "both" }))
      assert.same({4, 2, 3, 5}, ids_of(rt.graph:bfs(4, { dir = "both", max_depth = 1 })))
    end)

    it("crosses only the types and categories given", function()
      assert.same({1}, ids_of(rt.graph:bfs(1, { types = "Cause" })))
      assert.same({1, 2, 3, 4, 5}, ids_of(rt.graph:bfs(1, { types = { "Cause", "AssociatedWith" } })))
      assert.same({1, 2, 3, 4, 5}, ids_of(rt.graph:bfs(1, { categories = "Associative" })))
      assert.same({1}, ids_of(rt.graph:bfs(1, { categories = { "Causal", "Temporal" } })))
    end)

    it("takes a bidirectional link both ways", function()
      rt.connections:create(6, 5, { bidirectional = true })
      assert.same({1, 2, 3, 4, 5, 6}, ids_of(rt.graph:bfs(1)))
    end)

    it("answers nil and a message for a missing start", function()
      local r, msg = rt.graph:bfs(99)
      assert.is_nil(r)
      assert.matches("start token 99 not found", msg)
    end)

    it("raises naming the option for bad options", function()
      h.raises("unknown option 'max_dept' (did you mean 'max_depth'?)", rt.graph.bfs, rt.graph, 1, { max_dept = 2 })
      h.raises("unknown type in types 'Caus' (did you mean 'Cause'?)", rt.graph.bfs, rt.graph, 1,
               { types = { "Caus" } })
      h.raises("max_depth must be an integer 1..", rt.graph.bfs, rt.graph, 1, { max_depth = 0 })
      h.raises("dir must be 'out', 'in' or 'both'", rt.graph.bfs, rt.graph, 1, { dir = "up" })
      h.raises("categories must be", rt.graph.bfs, rt.graph, 1, { categories = "Nope" })
    end)
  end)

  describe("neighbourhood", function()
    it("lists the tokens within hops of the start, ascending, the start excluded", function()
      assert.same({2, 3, 5}, rt.graph:neighbourhood(4, 1, { dir = "both" }))
      assert.same({1, 2, 3, 5}, rt.graph:neighbourhood(4, 2, { dir = "both" }))
      assert.same({2, 3, 4}, rt.graph:neighbourhood(1, 2))
    end)

    it("raises for hops below 1", function()
      h.raises("hops must be an integer 1..", rt.graph.neighbourhood, rt.graph, 1, 0)
    end)
  end)

  describe("path", function()
    it("finds the fewest hops, ties going through the smaller id", function()
      local p, cost = rt.graph:path(1, 5)
      assert.same({1, 2, 4, 5}, p) -- 4 is 2 hops through 2 and through 3
      assert.equals(3, cost)
      p, cost = rt.graph:path(3, 3)
      assert.same({3}, p)
      assert.equals(0, cost)
    end)

    it("costs a link -ln(confidence) by weight: the most probable chain", function()
      local p, cost = rt.graph:path(1, 5, { cost = "weight" })
      assert.same({1, 3, 4, 5}, p) -- 1 * 1 * 0.5 beats 1 * 0.2 * 0.5
      near(-math.log(conf[1]) - math.log(conf[4]) - math.log(conf[5]), cost)
    end)

    it("costs a link by pull strength with field = 'pull_strength'", function()
      -- every pull is 0: no link can be crossed
      local p, msg = rt.graph:path(1, 5, { cost = "weight", field = "pull_strength" })
      assert.is_nil(p)
      assert.matches("no path from 1 to 5", msg)
    end)

    it("costs a link by the distance between its ends with 'distance:L1' (A*)", function()
      local p, cost = rt.graph:path(1, 5, { cost = "distance:L1" })
      assert.same({1, 2, 4, 5}, p) -- 3 long; through 3 it is 1 + sqrt 2 + 1
      near(3, cost)
      assert.is_nil((rt.graph:path(1, 5, { cost = "distance:sensory" }))) -- not placed in L2
    end)

    it("calls a cost function with each Connection, outside the store's lock", function()
      local calls = 0
      local p, cost = rt.graph:path(1, 5, { cost = function(c)
        calls = calls + 1
        rt.tokens:create() -- a write: no lock is held
        return c.to
      end })
      assert.same({1, 2, 4, 5}, p) -- 2 + 4 + 5 = 11 against 3 + 4 + 5
      assert.equals(11, cost)
      assert.is_true(calls >= 4)
      assert.is_nil((rt.graph:path(1, 5, { cost = function() return math.huge end })))
    end)

    it("stops at max_cost and follows the direction asked", function()
      assert.is_nil((rt.graph:path(1, 5, { max_cost = 2.5 })))
      assert.is_nil((rt.graph:path(5, 1)))
      assert.same({5, 4, 2, 1}, (rt.graph:path(5, 1, { dir = "both" })))
    end)

    it("answers nil and a message for a missing end", function()
      local p, msg = rt.graph:path(1, 42)
      assert.is_nil(p)
      assert.matches("to token 42 not found", msg)
      p, msg = rt.graph:path(42, 1)
      assert.is_nil(p)
      assert.matches("from token 42 not found", msg)
    end)

    it("raises for negative or non-number costs and passes the function's own error", function()
      h.raises("cost function returned -1", rt.graph.path, rt.graph, 1, 5, { cost = function() return -1 end })
      h.raises("cost function returned nan", rt.graph.path, rt.graph, 1, 5, { cost = function() return 0 / 0 end })
      h.raises("cost function must return a number", rt.graph.path, rt.graph, 1, 5, { cost = function() end })
      h.raises("boom", rt.graph.path, rt.graph, 1, 5, { cost = function() error("boom") end })
      h.raises("cost must be 'hops', 'weight', 'distance:<space>' or a function, got 'wieght' (did you mean 'weight'?)",
               rt.graph.path, rt.graph, 1, 5, { cost = "wieght" })
      h.raises("unknown space", rt.graph.path, rt.graph, 1, 5, { cost = "distance:L9" })
      h.raises("max_cost must be > 0", rt.graph.path, rt.graph, 1, 5, { max_cost = -1 })
    end)
  end)

  describe("spread", function()
    -- From token 1 with energy 1 and the original's defaults (decay 0.2, threshold 0.1,
    -- min_energy 0.01, max_depth 5): 2 and 3 get 1 * 1 * 0.8.
    it("reproduces the original in mode 'first': a token keeps its first arrival", function()
      local r = rt.graph:spread(1)
      -- 4 first hears from 2: 0.8 * 0.2 * 0.8; 5 then gets that * 0.5 * 0.8 = 0.05: reached, not
      -- reported (below the threshold)
      local e4 = 0.8 * conf[3] * 0.8
      assert.same({1, 2, 3, 4}, { r[1].id, r[2].id, r[3].id, r[4].id })
      assert.equals(4, #r)
      near(1, r[1].energy); near(0.8, r[2].energy); near(0.8, r[3].energy); near(e4, r[4].energy)
      assert.same({1, 2, 4}, r[4].path)
      assert.equals(2, r[4].depth)
      assert.equals(1, r[4].source)
      assert.same({1}, r[1].path)
    end)

    it("keeps the strongest arrival in mode 'max'", function()
      local r = rt.graph:spread(1, { mode = "max" })
      local e4 = 0.8 * conf[4] * 0.8 -- through 3: 0.64
      assert.equals(5, #r)
      near(e4, r[4].energy)
      near(e4 * conf[5] * 0.8, r[5].energy)
      assert.same({1, 3, 4, 5}, r[5].path)
    end)

    it("adds all arrivals in mode 'sum'", function()
      local r = rt.graph:spread(1, { mode = "sum" })
      local e4 = 0.8 * conf[3] * 0.8 + 0.8 * conf[4] * 0.8
      near(e4, r[4].energy)
      near(e4 * conf[5] * 0.8, r[5].energy)
      assert.same({1, 3, 4}, r[4].path) -- the strongest part came through 3
    end)

    it("orders by energy then id, from several sources with their energies", function()
      local r = rt.graph:spread({6, 4}, { energy = {0.5, 2}, max_depth = 1 })
      -- 4: 2; 5: 2 * 0.5 * 0.8; 6: 0.5; 1: 0.5 * 0.5 * 0.8 = 0.2
      assert.same({4, 5, 6, 1}, { r[1].id, r[2].id, r[3].id, r[4].id })
      assert.equals(4, r[2].source)
      assert.equals(6, r[4].source)
    end)

    it("honours decay, threshold and min_energy", function()
      -- no decay: 2 and 3 get 1, 4 first hears 1 * 0.2 from 2, under the threshold
      local r = rt.graph:spread(1, { decay = 0, threshold = 0.9 })
      assert.same({1, 2, 3}, { r[1].id, r[2].id, r[3].id })
      assert.equals(3, #r)
      local only = rt.graph:spread(1, { min_energy = 0.9 })
      assert.equals(1, #only) -- 0.8 does not cross
    end)

    it("answers nil and a message for a missing source", function()
      local r, msg = rt.graph:spread({1, 77})
      assert.is_nil(r)
      assert.matches("source token 77 not found", msg)
    end)

    it("raises naming the option for NaN energies, depths below 1 and unknown modes", function()
      h.raises("energy must be a finite number, got nan", rt.graph.spread, rt.graph, 1, { energy = 0 / 0 })
      h.raises("max_depth must be an integer 1..", rt.graph.spread, rt.graph, 1, { max_depth = 0 })
      h.raises("mode must be 'first', 'sum' or 'max', got 'summ' (did you mean 'sum'?)",
               rt.graph.spread, rt.graph, 1, { mode = "summ" })
      h.raises("decay must be within 0..1", rt.graph.spread, rt.graph, 1, { decay = 2 })
      h.raises("source 1 is given twice", rt.graph.spread, rt.graph, {1, 1})
      h.raises("energy must be a number or a list of 2 numbers", rt.graph.spread, rt.graph, {1, 2}, { energy = {1} })
    end)
  end)
end)
