-- rt.connections and neurograph.Connection handles: fields, learning rules, errors, stale handles.
local h = require "spec.helpers"
local ng = h.ng

describe("rt.connections", function()
  local rt, a, b, c
  before_each(function()
    rt = ng.Runtime()
    a, b, c = rt.tokens:create(), rt.tokens:create(), rt.tokens:create()
  end)
  after_each(function() rt:close() end)

  describe("create", function()
    it("returns ascending ids and keeps the direction", function()
      local c1 = rt.connections:create(b, a)
      local c2 = rt.connections:create(a, b)
      assert.equals(1, c1)
      assert.equals(2, c2)
      local conn = rt.connections:get(c1)
      assert.equals(b, conn.from)
      assert.equals(a, conn.to)
    end)

    it("uses the defaults of the reference (2.1)", function()
      local t = rt.connections:get(rt.connections:create(a, b)):to_table()
      assert.equals("AssociatedWith", t.type)
      assert.equals("Associative", t.category)
      assert.equals("Learnable", t.mutability)
      assert.equals(128 / 255, t.rigidity)
      assert.equals(128 / 255, t.confidence)
      assert.equals(32 / 255, t.learning_rate)
      assert.equals(16 / 255, t.decay_rate)
      assert.equals(0, t.flags)
      assert.is_false(t.bidirectional)
      assert.equals(0, t.pull_strength)
      assert.equals(1, t.preferred_distance)
      assert.equals(0, t.active_levels)
      assert.equals(0, t.activation_count)
      assert.equals(0, t.evidence_count)
      assert.equals(0, t.last_activation)
      assert.equals(0, t.source_id)
      assert.same({0, 0, 0, 0, 0, 0, 0, 0}, t.target_vector)
      assert.is_true(math.abs(t.created_at - rt:now()) <= 2)
      assert.equals(t.created_at, t.last_update)
    end)

    it("takes every settable field", function()
      local id = rt.connections:create(a, b, {
        type = "Cause", mutability = "Hypothesis", rigidity = 1.0, pull_strength = -2.5,
        preferred_distance = 3.5, confidence = 0.5, evidence_count = 7, activation_count = 9,
        flags = 0x01, bidirectional = true, learning_rate = 0.25, decay_rate = 0.5,
        active_levels = {"L1", "temporal"}, created_at = 100, last_activation = 200,
        last_update = 300, source_id = 4, target_vector = {1, -2, 3, -4, 5, -6, 7, -8},
      })
      local t = rt.connections:get(id):to_table()
      assert.equals("Cause", t.type)
      assert.equals("Causal", t.category)
      assert.equals("Hypothesis", t.mutability)
      assert.equals(1.0, t.rigidity)
      assert.equals(-2.5, t.pull_strength)
      assert.equals(3.5, t.preferred_distance)
      assert.equals(127 / 255, t.confidence) -- (0.5 * 255) truncated, as the reference encodes
      assert.equals(7, t.evidence_count)
      assert.equals(9, t.activation_count)
      assert.equals(0x05, t.flags)
      assert.is_true(t.bidirectional)
      assert.equals(63 / 255, t.learning_rate)
      assert.equals(127 / 255, t.decay_rate)
      assert.equals(0x41, t.active_levels)
      assert.equals(100, t.created_at)
      assert.equals(200, t.last_activation)
      assert.equals(300, t.last_update)
      assert.equals(4, t.source_id)
      assert.same({1, -2, 3, -4, 5, -6, 7, -8}, t.target_vector)
    end)

    it("derives mutability from the type; Immutable types force confidence 1", function()
      local conn = rt.connections:get(rt.connections:create(a, b, { type = "Synonym" }))
      assert.equals("Immutable", conn.mutability)
      assert.equals(1.0, conn.confidence)
      conn = rt.connections:get(rt.connections:create(a, b, { type = 0x31, confidence = 0.2 }))
      assert.equals("Far", conn.type)
      assert.equals("Immutable", conn.mutability)
      assert.equals(51 / 255, conn.confidence) -- an explicit value wins, whatever the order
    end)

    it("accepts Token handles as endpoints", function()
      local id = rt.connections:create(rt.tokens:get(a), rt.tokens:get(c))
      assert.equals(c, rt.connections:get(id).to)
    end)

    it("raises for missing endpoints, duplicates and bad fields, changing nothing", function()
      rt.connections:create(a, b, { type = "Cause" })
      local before = h.state(rt)
      h.raises("bad argument #3 to 'create' (token 99 does not exist)",
               function() rt.connections:create(a, 99) end)
      h.raises("bad argument #2 to 'create' (token 98 does not exist)",
               function() rt.connections:create(98, a) end)
      h.raises("bad argument #4 to 'create' (a Cause connection 1 -> 2 already exists (connection 1))",
               function() rt.connections:create(a, b, { type = "Cause" }) end)
      local cases = {
        { { type = "Causes" }, "unknown type 'Causes' (did you mean 'Cause'?)" },
        { { type = "Xyzzy" }, "type must be a connection type name or 0..175, got 'Xyzzy'" },
        { { type = 176 }, "got 176" },
        { { mutability = "Fixed" }, "mutability must be 'Immutable', 'Learnable', 'Hypothesis' or 0..2, got 'Fixed'" },
        { { rigidity = 1.5 }, "rigidity must be a number 0..1, got 1.5" },
        { { confidence = -0.1 }, "confidence must be a number 0..1, got -0.1" },
        { { learning_rate = 0 / 0 }, "learning_rate must be a number 0..1, got nan" },
        { { decay_rate = "x" }, "decay_rate must be a number 0..1, got 'x'" },
        { { pull_strength = 10.5 }, "pull_strength must be within -10..10, got 10.5" },
        { { preferred_distance = 0.001 }, "preferred_distance must be within 0.01..100, got 0.001" },
        { { preferred_distance = 101 }, "preferred_distance must be within 0.01..100, got 101" },
        { { evidence_count = 70000 }, "evidence_count must be an integer 0..65535, got 70000" },
        { { flags = 256 }, "flags must be an integer 0..255, got 256" },
        { { bidirectional = 1 }, "bidirectional must be a boolean, got 1" },
        { { active_levels = {"L0"} }, "space must be" },
        { { active_levels = 300 }, "active_levels must be an integer 0..255, got 300" },
        { { target_vector = {1, 2} }, "target_vector must be a table of 8 integers, got 2 values" },
        { { target_vector = "x" }, "target_vector must be a table of 8 integers, got 'x'" },
        { { created_at = -1 }, "created_at must be an integer 0..4294967295, got -1" },
        { { colour = "red" }, "unknown connection field 'colour'" },
      }
      for _, case in ipairs(cases) do
        local msg = h.raises(case[2], function() rt.connections:create(a, c, case[1]) end)
        assert.truthy(msg:find("bad argument #4 to 'create'", 1, true), msg)
      end
      h.raises("bad argument #2 to 'create' (token id must be an integer 1..9007199254740991, got 'a')",
               function() rt.connections:create("a", b) end)
      assert.same(before, h.state(rt))
    end)

    it("reports a CDNA degree limit as a limit, not as a bad argument", function()
      rt.cdna:set("max_out_degree", 1)
      rt.cdna:set("max_total_degree", 1)
      rt.connections:create(a, b)
      local before = h.state(rt)
      local msg = h.raises("create: degree limit reached: token " .. a
                           .. " has 1 outgoing connections (max_out_degree 1)",
                           function() rt.connections:create(a, c) end)
      assert.falsy(msg:find("bad argument", 1, true), msg)
      assert.falsy(msg:find("ng_", 1, true), msg) -- no C function name
      assert.same(before, h.state(rt))
    end)
  end)

  describe("get, update, delete, list, count, find, iter", function()
    it("get returns a handle or nil", function()
      local id = rt.connections:create(a, b)
      assert.equals(id, rt.connections:get(id).id)
      assert.is_nil(rt.connections:get(id + 1))
      h.raises("bad argument #2 to 'get' (connection id must be an integer", function() rt.connections:get(0) end)
    end)

    it("update writes fields and answers false for a missing connection", function()
      local id = rt.connections:create(a, b)
      assert.is_true(rt.connections:update(id, { pull_strength = 2, bidirectional = true, type = "Likes" }))
      local conn = rt.connections:get(id)
      assert.equals(2, conn.pull_strength)
      assert.is_true(conn.bidirectional)
      assert.equals("Likes", conn.type)
      assert.equals("Emotional", conn.category)
      assert.is_false(rt.connections:update(id + 1, { pull_strength = 1 }))
      assert.is_false(rt.connections:update(id + 1, { bidirectional = true }))
    end)

    it("update raises for unknown keys, bad values and duplicates, changing nothing", function()
      local id = rt.connections:create(a, b)
      rt.connections:create(a, b, { type = "Cause" })
      local before = h.state(rt)
      h.raises("bad argument #3 to 'update' (unknown connection field 'from')",
               function() rt.connections:update(id, { from = c }) end)
      h.raises("bad argument #3 to 'update' (pull_strength must be within -10..10, got 11)",
               function() rt.connections:update(id, { rigidity = 0.1, pull_strength = 11 }) end)
      h.raises("bad argument #3 to 'update' (a Cause connection with the same endpoints already exists)",
               function() rt.connections:update(id, { type = "Cause" }) end)
      assert.same(before, h.state(rt))
    end)

    it("delete returns true, then false", function()
      local id = rt.connections:create(a, b)
      assert.is_true(rt.connections:delete(id))
      assert.is_false(rt.connections:delete(id))
      assert.equals(0, rt.connections:count())
    end)

    it("list pages in ascending id order; count counts", function()
      for _, t in ipairs{"Cause", "Effect", "Before", "After"} do
        rt.connections:create(a, b, { type = t })
      end
      rt.connections:delete(2)
      assert.same({1, 3, 4}, rt.connections:list())
      assert.same({3, 4}, rt.connections:list(5, 1))
      assert.same({1}, rt.connections:list(1))
      assert.equals(3, rt.connections:count())
      h.raises("bad argument #2 to 'list' (limit must be", function() rt.connections:list("x") end)
    end)

    it("find looks a connection up by endpoints and type", function()
      local id = rt.connections:create(a, b, { type = "Cause" })
      local dflt = rt.connections:create(a, b)
      assert.equals(id, rt.connections:find(a, b, "Cause"))
      assert.equals(dflt, rt.connections:find(a, b))
      assert.is_nil(rt.connections:find(b, a, "Cause"))
    end)

    it("iter visits connections in ascending id order", function()
      rt.connections:create(a, b)
      rt.connections:create(b, c)
      rt.connections:create(c, a)
      local seen = {}
      for id, conn in rt.connections:iter() do
        seen[#seen + 1] = id
        assert.equals(id, conn.id)
        if id == 1 then rt.connections:delete(2) end
      end
      assert.same({1, 3}, seen)
    end)
  end)
end)

describe("neurograph.Connection", function()
  local rt, conn
  before_each(function()
    rt = ng.Runtime()
    local a, b = rt.tokens:create(), rt.tokens:create()
    conn = rt.connections:get(rt.connections:create(a, b))
  end)
  after_each(function() rt:close() end)

  it("writes fields through to the store", function()
    conn.rigidity = 0.2
    conn.confidence = 1
    conn.pull_strength = 0.5
    conn.preferred_distance = 2.5
    conn.bidirectional = true
    conn.flags = h.bor(conn.flags, ng.connection_flags.PERSISTENT)
    conn.active_levels = 3
    conn.mutability = "Immutable"
    conn.type = "Near"
    local t = rt.connections:get(conn.id):to_table()
    assert.equals(51 / 255, t.rigidity)
    assert.equals(1, t.confidence)
    assert.equals(0.5, t.pull_strength)
    assert.equals(2.5, t.preferred_distance)
    assert.equals(0x06, t.flags)
    assert.equals(3, t.active_levels)
    assert.equals("Near", t.type)
    assert.equals("Immutable", t.mutability)
  end)

  it("refuses read-only and unknown fields and bad values", function()
    local before = h.state(rt)
    h.raises("field 'from' of neurograph.Connection is read-only", function() conn.from = 2 end)
    h.raises("field 'category' of neurograph.Connection is read-only", function() conn.category = "x" end)
    h.raises("neurograph.Connection has no field 'strength'", function() conn.strength = 1 end)
    h.raises("neurograph.Connection has no field 'strength'", function() return conn.strength end)
    h.raises("bad argument #3 to '__newindex' (rigidity must be a number 0..1, got 2)",
             function() conn.rigidity = 2 end)
    assert.same(before, h.state(rt))
  end)

  it("activate follows reference 2.4 (count, ACTIVE, REINFORCED, rigidity + 1)", function()
    assert.equals(1, conn:activate())
    assert.equals(0x21, conn.flags)
    assert.equals(129 / 255, conn.rigidity)
    assert.is_true(conn.last_activation > 0)
  end)

  it("update_confidence: success 128 -> 160, then failure -> 144", function()
    assert.equals(160 / 255, conn:update_confidence(true))
    assert.equals(1, conn.evidence_count)
    assert.equals(144 / 255, conn:update_confidence(false))
    assert.equals(1, conn.evidence_count)
    assert.equals(ng.connection_flags.MODIFIED, h.band(conn.flags, ng.connection_flags.MODIFIED))
    h.raises("bad argument #2 to 'update_confidence' (success must be a boolean, got no value)",
             function() conn:update_confidence() end)
  end)

  it("update_confidence leaves Immutable connections alone", function()
    conn.type = "Synonym"
    assert.equals(1, conn:update_confidence(false))
  end)

  it("decay applies only to a Hypothesis untouched for over an hour", function()
    assert.is_false((conn:decay()))
    conn.mutability = "Hypothesis"
    assert.is_false((conn:decay()))
    conn.last_update = rt:now() - 7200
    local applied, confidence = conn:decay()
    assert.is_true(applied)
    assert.equals(math.floor(128 / 255 * (1 - 16 / 255) * 255) / 255, confidence)
    assert.equals(ng.connection_flags.DECAYING, h.band(conn.flags, ng.connection_flags.DECAYING))
  end)

  it("force(distance) is (preferred - d) * rigidity * pull * confidence", function()
    conn.pull_strength = 2
    local expected = h.f32((1 - 0.25) * (128 / 255) * 2 * (128 / 255))
    assert.is_true(math.abs(conn:force(0.25) - expected) < 1e-6)
    h.raises("bad argument #2 to 'force' (distance must be a finite number, got nan)",
             function() conn:force(0 / 0) end)
  end)

  it("raises 'connection N no longer exists' when its record is gone", function()
    rt.connections:delete(conn.id)
    assert.equals(1, conn.id)
    for _, f in ipairs{
      function() return conn.type end,
      function() conn.rigidity = 0.5 end,
      function() return conn:activate() end,
      function() return conn:update_confidence(true) end,
      function() return conn:decay() end,
      function() return conn:force(1) end,
      function() return conn:to_table() end,
      function() return conn:update{ rigidity = 0.5 } end,
    } do
      h.raises("connection 1 no longer exists", f)
    end
    assert.is_false(conn:exists())
    assert.is_false(conn:delete())
  end)

  it("goes stale when an endpoint token is deleted", function()
    rt.tokens:delete(conn.from)
    h.raises("connection 1 no longer exists", function() return conn.confidence end)
  end)

  it("has __tostring, __eq and __name", function()
    assert.equals("neurograph.Connection(1)", tostring(conn))
    assert.equals(conn, rt.connections:get(1))
    assert.equals("neurograph.Connection", getmetatable(conn).__name)
  end)
end)

describe("undirected links", function()
  local rt, C, a, b
  before_each(function()
    rt = ng.Runtime()
    C = rt.connections
    a, b = rt.tokens:create{}, rt.tokens:create{}
  end)
  after_each(function() rt:close() end)

  it("are found from both ends", function()
    local ab = C:create(a, b, { type = "Trusts", bidirectional = true })
    assert.equals(ab, C:find(a, b, "Trusts"))
    assert.equals(ab, C:find(b, a, "Trusts"))
    assert.is_nil(C:find(b, a, "Likes"))
    C:update(ab, { bidirectional = false })
    assert.is_nil(C:find(b, a, "Trusts"))
  end)

  it("are unique in both directions", function()
    C:create(a, b, { type = "Trusts", bidirectional = true })
    h.raises("bad argument #4 to 'create' (a Trusts connection 1 -> 2 already exists (connection 1) "
             .. "and one of the two is bidirectional)",
             function() C:create(b, a, { type = "Trusts" }) end)
    h.raises("already exists", function() C:create(b, a, { type = "Trusts", bidirectional = true }) end)
    local ba = C:create(b, a, { type = "Likes" })
    local ab = C:create(a, b, { type = "Likes" }) -- directed both ways: two links
    h.raises("bad argument #3 to 'update' (connection " .. ab .. " (1 -> 2) of type 0x80 (Likes) "
             .. "already links these tokens and one of the two is bidirectional)",
             function() C:update(ba, { bidirectional = true }) end)
    assert.is_false(C:get(ba).bidirectional)
  end)

  it("are outgoing and incoming at both ends, counted once in each end's degree", function()
    local ab = C:create(a, b, { type = "Trusts", bidirectional = true })
    local A, B = rt.tokens:get(a), rt.tokens:get(b)
    for _, tok in ipairs({A, B}) do
      assert.same({ab}, tok:connections{ dir = "out" })
      assert.same({ab}, tok:connections{ dir = "in" })
      assert.same({ab}, tok:connections())
      assert.equals(1, tok:degree())
    end
    assert.same({b}, A:neighbours{ dir = "in" })
    assert.same({a}, B:neighbours{ dir = "out" })
  end)
end)

describe("typed adjacency", function()
  local rt, T, C, me, x, y, z
  local l1, l2, l3, l4
  before_each(function()
    rt = ng.Runtime()
    T, C = rt.tokens, rt.connections
    me, x, y, z = T:create{}, T:create{}, T:create{}, T:create{}
    l1 = C:create(me, x, { type = "Trusts" })
    l2 = C:create(y, me, { type = "Trusts" })
    l3 = C:create(me, z, { type = "Cause" })
    l4 = C:create(me, x, { type = "Likes" })
  end)
  after_each(function() rt:close() end)

  it("lists connections by direction, type and category, in id order", function()
    local tok = T:get(me)
    assert.same({l1, l2, l3, l4}, tok:connections())
    assert.same({l1, l3, l4}, tok:connections("out"))
    assert.same({l1, l3, l4}, tok:connections{ dir = "out" })
    assert.same({l1, l2}, tok:connections{ type = "Trusts" })
    assert.same({l1}, tok:connections{ dir = "out", type = "Trusts" })
    assert.same({l1, l2, l4}, tok:connections{ category = "Emotional" })
    assert.same({l1, l2, l4}, tok:connections{ category = ng.categories.Emotional })
    assert.same({l3}, tok:connections{ category = "Causal" })
  end)

  it("lists the tokens at the other ends, each once, ascending", function()
    local tok = T:get(me)
    assert.same({x, y, z}, tok:neighbours())
    assert.same({x, z}, tok:neighbours{ dir = "out" })
    assert.same({x, y}, tok:neighbours{ type = "Trusts" })
    assert.same({x}, tok:neighbours{ category = "Emotional", dir = "out" })
  end)

  it("counts without building lists", function()
    local tok = T:get(me)
    assert.equals(4, tok:degree())
    assert.equals(3, tok:degree("out"))
    assert.equals(1, tok:degree{ dir = "in" })
    assert.equals(2, tok:degree{ type = "Trusts" })
    assert.equals(0, T:get(z):degree{ dir = "out" })
  end)

  it("raises naming the bad field", function()
    local tok = T:get(me)
    h.raises("bad argument #2 to 'connections' (dir must be 'out', 'in' or 'both', got 'up')",
             function() tok:connections{ dir = "up" } end)
    h.raises("bad argument #2 to 'neighbours' (unknown type 'Trust' (did you mean 'Trusts'?))",
             function() tok:neighbours{ type = "Trust" } end)
    h.raises("bad argument #2 to 'degree' (category must be a category name ('Semantic' .. "
             .. "'Dynamic', as in ng.categories) or 0..10, got 'Emotion' (did you mean 'Emotional'?))",
             function() tok:degree{ category = "Emotion" } end)
    h.raises("bad argument #2 to 'degree' (unknown option 'kind')",
             function() tok:degree{ kind = 1 } end)
    h.raises("bad argument #2 to 'connections' (options table {dir, type, category} expected, got 5)",
             function() tok:connections(5) end)
    T:delete(me)
    h.raises("token " .. me .. " no longer exists", function() tok:degree() end)
  end)
end)
