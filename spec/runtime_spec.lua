-- neurograph.Runtime: configuration, lifetime (close, <close>, garbage collection), many runtimes.
local h = require "spec.helpers"
local ng = h.ng

describe("ng.Runtime", function()
  it("creates a runtime with defaults; config is optional", function()
    local rt = ng.Runtime()
    assert.equals("neurograph.Runtime", getmetatable(rt).__name)
    assert.equals(1000, rt.grid_size)
    assert.equals(50, rt.dimensions)
    assert.equals(0, rt.tokens:count())
    rt:close()
  end)

  it("accepts grid_size, dimensions and the neurograph settings", function()
    local rt = ng.Runtime{
      grid_size = 500, dimensions = 8, initial_tokens = 1000, initial_connections = 100,
      profile = "Explorer", cell_sizes = { L1 = 2.5, [8] = 0.5 },
    }
    assert.equals(500, rt.grid_size)
    assert.equals(8, rt.dimensions)
    assert.same({1, "Explorer"}, {rt.cdna:get_profile()})
    assert.same({2.5, 10, 10, 10, 10, 10, 10, 0.5}, rt.cdna:get_config().bucket_sizes)
    assert.equals(2.5, rt.grid:info().cell_size)
    rt:close()
    rt = ng.Runtime{ cell_size = 4, profile = 2 }
    assert.same({4, 4, 4, 4, 4, 4, 4, 4}, rt.cdna:get_config().bucket_sizes)
    assert.equals(2, (rt.cdna:get_profile()))
    rt:close()
  end)

  it("raises for unknown keys and bad values, naming them", function()
    h.raises("bad argument #1 to 'Runtime' (unknown config key 'grid_szie' (did you mean 'grid_size'?))",
             function() ng.Runtime{ grid_szie = 10 } end)
    h.raises("bad argument #1 to 'Runtime' (grid_size must be an integer 1..2147483647, got 0)",
             function() ng.Runtime{ grid_size = 0 } end)
    h.raises("dimensions must be an integer 1..2147483647, got -5",
             function() ng.Runtime{ dimensions = -5 } end)
    h.raises("dimensions must be an integer 1..2147483647, got 2.5",
             function() ng.Runtime{ dimensions = 2.5 } end)
    h.raises("profile must be 0..3, 255 or 'Default', 'Explorer', 'Analyst', 'Creative', 'Custom', got 'Nope'",
             function() ng.Runtime{ profile = "Nope" } end)
    h.raises("cell_size must be > 0, got 0", function() ng.Runtime{ cell_size = 0 } end)
    h.raises("cell size must be > 0, got -1", function() ng.Runtime{ cell_sizes = { L2 = -1 } } end)
    h.raises("space must be 'L1'..'L8'", function() ng.Runtime{ cell_sizes = { L9 = 1 } } end)
    h.raises("initial_tokens must be an integer", function() ng.Runtime{ initial_tokens = -1 } end)
    h.raises("bad argument #1 to 'Runtime' (config table expected, got 5)", function() ng.Runtime(5) end)
  end)

  it("hands out the same sub-objects every time", function()
    local rt = ng.Runtime()
    assert.equals(rt.tokens, rt.tokens)
    assert.equals("neurograph.Tokens", getmetatable(rt.tokens).__name)
    assert.equals("neurograph.Connections", getmetatable(rt.connections).__name)
    assert.equals("neurograph.Grid", getmetatable(rt.grid).__name)
    assert.equals("neurograph.CDNA", getmetatable(rt.cdna).__name)
    rt:close()
  end)

  it("raises for unknown fields and any assignment", function()
    local rt = ng.Runtime()
    h.raises("neurograph.Runtime has no field 'token'", function() return rt.token end)
    h.raises("neurograph.Runtime fields are read-only", function() rt.tokens = {} end)
    rt:close()
  end)

  it("has __tostring, __eq and stats", function()
    local rt = ng.Runtime()
    rt.tokens:create()
    assert.equals("neurograph.Runtime (tokens=1, connections=0)", tostring(rt))
    assert.equals(rt, rt)
    assert.not_equals(rt, ng.Runtime())
    local s = rt:stats()
    assert.equals(1, s.tokens)
    assert.equals(0, s.connections)
    assert.equals(2, s.next_token_id)
    assert.is_true(s.bytes_in_use > 0)
    assert.is_true(s.bytes_peak >= s.bytes_in_use)
    assert.is_true(math.abs(rt:now() - os.time()) <= 2)
    rt:close()
    assert.equals("neurograph.Runtime (closed)", tostring(rt))
  end)

  describe("close", function()
    it("makes the runtime, its sub-objects and its handles raise 'runtime is closed'", function()
      local rt = ng.Runtime()
      local tokens, grid, cdna, conns = rt.tokens, rt.grid, rt.cdna, rt.connections
      local a, b = tokens:create(), tokens:create()
      local tok = tokens:get(a)
      local conn = conns:get(conns:create(a, b))
      assert.is_false(rt:is_closed())
      rt:close()
      assert.is_true(rt:is_closed())
      for _, f in ipairs{
        function() return tokens:count() end,
        function() return tokens:create() end,
        function() return rt.tokens:list() end,
        function() return rt.tokens:iter() end,
        function() return grid:range_query({0, 0, 0}, 1) end,
        function() return cdna:get_config() end,
        function() return conns:count() end,
        function() return tok.weight end,
        function() tok.weight = 1 end,
        function() return tok:coords() end,
        function() return conn.type end,
        function() return conn:activate() end,
        function() return rt:stats() end,
      } do
        h.raises("runtime is closed", f)
      end
      assert.equals("neurograph.Token(1)", tostring(tok))
    end)

    it("is idempotent", function()
      local rt = ng.Runtime()
      rt:close()
      rt:close()
      assert.is_true(rt:is_closed())
    end)

    it("stops an iteration cleanly", function()
      local rt = ng.Runtime()
      for _ = 1, 3 do rt.tokens:create() end
      h.raises("runtime is closed", function()
        for id in rt.tokens:iter() do if id == 2 then rt:close() end end
      end)
    end)
  end)

  describe("garbage collection", function()
    it("keeps a runtime alive while a handle lives", function()
      local tok
      do
        local rt = ng.Runtime()
        tok = rt.tokens:get(rt.tokens:create{ weight = 0.25 })
      end
      collectgarbage()
      collectgarbage()
      assert.equals(0.25, tok.weight)
      tok.weight = 0.5
      assert.equals(0.5, tok.weight)
    end)

    it("keeps a runtime alive through its sub-objects", function()
      local tokens
      do tokens = ng.Runtime().tokens end
      collectgarbage()
      collectgarbage()
      assert.equals(1, tokens:create())
      assert.equals(1, tokens:count())
    end)

    it("collects runtimes nobody references (memory stays bounded)", function()
      collectgarbage()
      local base = collectgarbage("count")
      for _ = 1, 200 do
        local rt = ng.Runtime()
        local t = rt.tokens:get(rt.tokens:create())
        local _ = t.weight
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(collectgarbage("count") - base < 200) -- KB; the userdata went
    end)
  end)

  describe("many runtimes", function()
    it("keep separate stores and ids", function()
      local rts = {}
      for i = 1, 20 do
        rts[i] = ng.Runtime()
        for _ = 1, i do rts[i].tokens:create{ weight = i } end
      end
      for i = 1, 20 do
        assert.equals(i, rts[i].tokens:count())
        assert.equals(i, rts[i].tokens:get(1).weight)
      end
      for i = 1, 20 do rts[i]:close() end
    end)

    it("refuse a handle of another runtime as an id", function()
      local r1, r2 = ng.Runtime(), ng.Runtime()
      local tok = r1.tokens:get(r1.tokens:create())
      r2.tokens:create()
      h.raises("bad argument #2 to 'get' (token belongs to another runtime)",
               function() r2.tokens:get(tok) end)
      h.raises("bad argument #2 to 'create' (token belongs to another runtime)",
               function() r2.connections:create(tok, 1) end)
      r1:close()
      r2:close()
    end)
  end)
end)
