-- Error messages of the binding with hostile values: long, '%', zero bytes, non-UTF-8; strings
-- with a zero byte inside; numbers a C type cannot hold; `into` tables with holes; limits
-- reported as limits; suggestions for misspelt names; the ng.util helpers' argument checks.
local h = require "spec.helpers"
local ng = h.ng

describe("binding messages", function()
  local rt, a, b
  before_each(function()
    rt = ng.Runtime()
    a = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
    b = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
  end)

  describe("show the value given, whatever it is", function()
    local long = string.rep("x", 60)
    -- each: a call that raises about the string s, given s
    local paths = {
      ["token field"] = function(s) rt.tokens:create{ [s] = 1 } end,
      ["entity"] = function(s) rt.tokens:create{ entity = s } end,
      ["space"] = function(s) rt.tokens:create{ coords = { [s] = {0, 0, 0} } } end,
      ["connection type"] = function(s) rt.connections:create(a, b, { type = s }) end,
      ["mutability"] = function(s) rt.connections:create(a, b, { mutability = s }) end,
      ["connection field"] = function(s) rt.connections:create(a, b, { [s] = 1 }) end,
      ["query option"] = function(s) rt.grid:range_query({0, 0, 0}, 1, { [s] = 1 }) end,
      ["query space"] = function(s) rt.grid:range_query({0, 0, 0}, 1, { space = s }) end,
      ["config key"] = function(s) ng.Runtime{ [s] = 1 } end,
      ["profile"] = function(s) rt.cdna:set_profile(s) end,
      ["config profile"] = function(s) ng.Runtime{ profile = s } end,
      ["CDNA field"] = function(s) rt.cdna:get(s) end,
      ["direction"] = function(s) rt.tokens:get(a):connections(s) end,
      ["weight"] = function(s) rt.tokens:create{ weight = s } end,
      ["handle field"] = function(s) return rt.tokens:get(a)[s] end,
    }
    local values = {
      { long, "'" .. string.rep("x", 40) .. "...'" },
      { "we%ight%s%d%", "'we%ight%s%d%'" },
      { "nul\0byte", "'nul\\0byte'" },
      { "bad\255\254utf8", "'bad\\255\\254utf8'" },
      { "tab\there", "'tab\\9here'" },
      { "back\\slash", "'back\\\\slash'" },
    }
    for what, call in pairs(paths) do
      it("for a bad " .. what, function()
        for _, v in ipairs(values) do
          local msg = h.error_of(call, v[1])
          assert.falsy(msg:find("lua_pushfstring", 1, true), msg)
          assert.truthy(msg:find(v[2], 1, true), what .. ": " .. msg)
        end
      end)
    end
  end)

  describe("suggest the closest known name", function()
    local cases = {
      { function() rt.tokens:create{ entity = "Concpt" } end,
        "unknown entity 'Concpt' (did you mean 'Concept'?)" },
      { function() rt.tokens:create{ wieght = 1 } end,
        "unknown token field 'wieght' (did you mean 'weight'?)" },
      { function() rt.tokens:create{ coords = { physicl = {0, 0, 0} } } end,
        "unknown space 'physicl' (did you mean 'physical'?)" },
      { function() rt.connections:create(a, b, { type = "Causes" }) end,
        "unknown type 'Causes' (did you mean 'Cause'?)" },
      { function() rt.connections:create(a, b, { confidnce = 1 }) end,
        "unknown connection field 'confidnce' (did you mean 'confidence'?)" },
      { function() rt.connections:create(a, b, { mutability = "Learnabel" }) end,
        "got 'Learnabel' (did you mean 'Learnable'?)" },
      { function() rt.grid:range_query({0, 0, 0}, 1, { spcae = "L1" }) end,
        "unknown option 'spcae' (did you mean 'space'?)" },
      { function() ng.Runtime{ cell_szie = 1 } end,
        "unknown config key 'cell_szie' (did you mean 'cell_size'?)" },
      { function() ng.Runtime{ profile = "Explorr" } end, "(did you mean 'Explorer'?)" },
      { function() rt.cdna:set_profile("Analist") end, "(did you mean 'Analyst'?)" },
      { function() rt.cdna:get("max_out_degre") end,
        "unknown CDNA field 'max_out_degre' (did you mean 'max_out_degree'?)" },
      { function() rt.tokens:get(a):connections("outt") end, "(did you mean 'out'?)" },
    }
    for _, case in ipairs(cases) do
      it(case[2], function() h.raises(case[2], case[1]) end)
    end

    it("suggests nothing when nothing is close or two names are as close", function()
      local msg = h.error_of(function() rt.tokens:create{ zzz = 1 } end)
      assert.falsy(msg:find("did you mean", 1, true), msg)
      msg = h.error_of(function() rt.grid:range_query({0, 0, 0}, 1, { space = "L0" }) end)
      assert.falsy(msg:find("did you mean", 1, true), msg) -- L1..L8 are all one edit away
    end)
  end)

  describe("refuse a zero byte inside a string passed to C", function()
    it("in a save path, writing nothing", function()
      local dir = os.tmpname()
      os.remove(dir)
      local path = dir .. ".ngs"
      h.raises("bad argument #2 to 'save' (path must not contain a zero byte, got '"
               .. path .. "\\0.evil')", function() rt:save(path .. "\0.evil") end)
      assert.is_nil(io.open(path, "rb"))
    end)

    it("in a load path", function()
      h.raises("bad argument #1 to 'load' (path must not contain a zero byte",
               function() ng.load("a.ngs\0b") end)
    end)

    it("in names compared in C", function()
      h.raises("bad argument #4 to 'create' (mutability must be", function()
        rt.connections:create(a, b, { mutability = "Learnable\0x" })
      end)
      h.raises("bad argument #2 to 'connections' (direction must be", function()
        rt.tokens:get(a):connections("out\0")
      end)
      h.raises("bad argument #2 to 'get' (unknown CDNA field 'flags\\0x'", function()
        rt.cdna:get("flags\0x")
      end)
      h.raises("bad argument #2 to 'create' (unknown entity 'Concept\\0'", function()
        rt.tokens:create{ entity = "Concept\0" }
      end)
      h.raises("bad argument #2 to 'create' (unknown token field 'weight\\0'", function()
        rt.tokens:create{ ["weight\0"] = 1 }
      end)
    end)
  end)

  describe("refuse numbers the C type cannot hold", function()
    it("a cell size that underflows a float to 0", function()
      h.raises("bad argument #1 to 'Runtime' (cell_size is out of the range of a float",
               function() ng.Runtime{ cell_size = 1e-50 } end)
      h.raises("bad argument #1 to 'Runtime' (cell size is out of the range of a float",
               function() ng.Runtime{ cell_sizes = { L1 = 1e-50 } } end)
      h.raises("bad argument #1 to 'Runtime' (cell_size must be at most 1e9, got 1000000000000)",
               function() ng.Runtime{ cell_size = 1e12 } end)
    end)

    it("CDNA floats that underflow or overflow", function()
      local before = h.state(rt)
      h.raises("bad argument #3 to 'set' (decay_rate is out of the range of a float",
               function() rt.cdna:set("decay_rate", 1e-50) end)
      h.raises("bad argument #3 to 'set' (max_weight_threshold is out of the range of a float",
               function() rt.cdna:set("max_weight_threshold", 1e39) end)
      h.raises("bad argument #2 to 'update_scales' (scale of L3 is out of the range of a float",
               function() rt.cdna:update_scales{ 1, 1, 1e-60, 1, 1, 1, 1, 1 } end)
      assert.same(before, h.state(rt))
    end)

    it("a weight or pull strength that underflows to 0", function()
      h.raises("bad argument #2 to 'create' (weight is out of the range of a float",
               function() rt.tokens:create{ weight = 1e-50 } end)
      h.raises("bad argument #4 to 'create' (pull_strength is out of the range of a float",
               function() rt.connections:create(a, b, { pull_strength = -1e-50 }) end)
      assert.equals(0, rt.tokens:get(rt.tokens:create{ weight = 0 }).weight)
    end)

    it("an iterator control value that is no id", function()
      local next_token, tokens = rt.tokens:iter()
      h.raises("bad argument #2 to 'iter' (control value (last id) must be an integer "
               .. "0..9007199254740991, got 9007199254740992)",
               function() next_token(tokens, h.pow2(53)) end)
      h.raises("got -1", function() next_token(tokens, -1) end)
      h.raises("got 1.5", function() next_token(tokens, 1.5) end)
      assert.equals(b, (next_token(tokens, a)))
      rt.connections:create(a, b)
      local next_conn, conns = rt.connections:iter()
      h.raises("got 9007199254740992", function() next_conn(conns, h.pow2(53)) end)
      assert.equals(1, (next_conn(conns, 0)))
    end)
  end)

  describe("clear every old entry of an `into` table", function()
    it("in tokens:list, past a hole", function()
      local ids = rt.tokens:list(1, 0, { 10, 20, 30, nil, 50, 60, name = "x" })
      assert.same({ a }, ids)
    end)

    it("in connections:list", function()
      rt.connections:create(a, b)
      assert.same({ 1 }, rt.connections:list(nil, nil, { 7, 8, nil, 9, [100] = 1 }))
    end)

    it("in grid queries", function()
      local into = { {0, 0}, {0, 0}, nil, {0, 0}, nil, nil, {0, 0} }
      local hits = rt.grid:range_query({0, 0, 0}, 1, { into = into })
      assert.equals(into, hits)
      assert.equals(2, #hits)
      local n = 0
      for _ in pairs(hits) do n = n + 1 end
      assert.equals(2, n)
    end)

    it("in ng.util.ids", function()
      assert.same({ 5 }, ng.util.ids({ { 5, 0 } }, { 1, 2, nil, 4 }))
    end)
  end)

  describe("report", function()
    it("a handle from a closed runtime as a closed runtime", function()
      local other = ng.Runtime()
      local t = other.tokens:get(other.tokens:create{})
      other:close()
      h.raises("bad argument #2 to 'create' (token: runtime is closed)",
               function() rt.connections:create(t, b) end)
    end)

    it("a limit as a limit, without a C function name", function()
      rt.cdna:set("max_in_degree", 1)
      rt.connections:create(a, b)
      local c = rt.tokens:create{}
      local msg = h.raises("create: degree limit reached: token " .. b
                           .. " has 1 incoming connections (max_in_degree 1)",
                           function() rt.connections:create(c, b) end)
      assert.falsy(msg:find("bad argument", 1, true), msg)
      assert.falsy(msg:find("ng_", 1, true), msg)
    end)

    it("a CDNA block that fails validation without a C function name", function()
      local msg = h.raises("bad argument #3 to 'set' (", function()
        rt.cdna:set("min_weight_threshold", 50)
        rt.cdna:set("max_weight_threshold", 1)
      end)
      assert.falsy(msg:find("ng_", 1, true), msg)
    end)

    it("coords that are not 3 numbers by what is wrong", function()
      h.raises("coords of L1 must be a table {x, y, z} of 3 numbers, got 2 values",
               function() rt.tokens:create{ coords = { L1 = {1, 2} } } end)
      h.raises("x of L2 must be a finite number, got 'a'",
               function() rt.tokens:create{ coords = { L2 = {"a", 2, 3} } } end)
      h.raises("center must be a table {x, y, z} of 3 numbers, got 4 values",
               function() rt.grid:range_query({1, 2, 3, 4}, 1) end)
    end)
  end)

  describe("ng.util helpers given the wrong type", function()
    local cases = {
      { function() ng.util.format_list() end, "bad argument #1 to 'format_list' (table expected, got nil)" },
      { function() ng.util.format_list("x") end, "bad argument #1 to 'format_list' (table expected, got string)" },
      { function() ng.util.ids(5) end, "bad argument #1 to 'ids' (table expected, got number)" },
      { function() ng.util.ids({}, "x") end, "bad argument #2 to 'ids' (table expected, got string)" },
      { function() ng.util.space_name({}) end,
        "bad argument #1 to 'space_name' (string or number expected, got table)" },
    }
    for _, case in ipairs(cases) do
      it("raise " .. case[2], function() h.raises(case[2], case[1]) end)
    end

    it("still answer nil for an unknown space", function()
      assert.is_nil(ng.util.space_name("L9"))
      assert.equals("L2", ng.util.space_name(2))
    end)
  end)
end)
