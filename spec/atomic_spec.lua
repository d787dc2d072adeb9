-- rt:atomic and the create_many batches: many writes, all or nothing.
local h = require "spec.helpers"
local ng = h.ng

-- Everything the API shows of a store, as one comparable string.
local function dump(rt)
  local parts = {}
  for id in rt.tokens:iter() do
    local t = rt.tokens:get(id):to_table()
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    local fields = {}
    for _, k in ipairs(keys) do
      local v = t[k]
      if type(v) == "table" then
        local sub = {}
        for sk, sv in pairs(v) do
          sub[#sub + 1] = tostring(sk) .. "=" .. (type(sv) == "table" and table.concat(sv, ",") or tostring(sv))
        end
        table.sort(sub)
        v = "{" .. table.concat(sub, ";") .. "}"
      end
      fields[#fields + 1] = k .. "=" .. tostring(v)
    end
    parts[#parts + 1] = id .. ":" .. table.concat(fields, " ")
  end
  for id in rt.connections:iter() do
    local c = rt.connections:get(id)
    parts[#parts + 1] = "c" .. id .. ":" .. c.from .. ">" .. c.to .. ":" .. c.type .. ":" .. c.pull_strength
  end
  local s = rt:stats()
  parts[#parts + 1] = "next " .. s.next_token_id .. " " .. s.next_connection_id .. " free "
    .. s.token_slots_free .. " " .. s.connection_slots_free
  return table.concat(parts, "\n")
end

describe("rt:atomic", function()
  local rt
  before_each(function() rt = ng.Runtime() end)
  after_each(function() rt:close() end)

  it("commits every write when fn returns, and returns fn's results", function()
    local a, b, n = rt:atomic(function(x, y)
      local id = rt.tokens:create{ weight = x }
      rt.tokens:create{ weight = y }
      return id, "second", select("#", x, y)
    end, 3, 4)
    assert.equals(1, a)
    assert.equals("second", b)
    assert.equals(2, n)
    assert.equals(2, rt.tokens:count())
    assert.equals(4, rt.tokens:get(2).weight)
  end)

  it("returns nothing when fn returns nothing", function()
    assert.equals(0, select("#", rt:atomic(function() end)))
  end)

  it("undoes every write when fn raises, and re-raises the error unchanged", function()
    local a = rt.tokens:create{ weight = 5, coords = { L1 = {1, 2, 3} } }
    local b = rt.tokens:create()
    local link = rt.connections:create(a, b)
    local before = dump(rt)
    local err = setmetatable({}, { __tostring = function() return "my error" end })
    local ok, got = pcall(rt.atomic, rt, function()
      rt.tokens:create{ weight = 1 }
      rt.tokens:update(a, { weight = 9, coords = { L1 = {4, 5, 6} } })
      rt.connections:update(link, { pull_strength = 2 })
      rt.connections:create(b, a)
      rt.tokens:delete(b)
      rt.cdna:set("max_out_degree", 7)
      rt.cdna:update_scales{2, 1, 1, 1, 1, 1, 1, 1}
      error(err)
    end)
    assert.is_false(ok)
    assert.equals(err, got)
    assert.equals(before, dump(rt))
    assert.are_not.equal(7, rt.cdna:get("max_out_degree"))
    assert.equals(1, rt.cdna:get("scales")[1])
    assert.same({1, 2, 3}, {rt.tokens:get(a):coords("L1")})
    -- the next create gets the id it would have had without the transaction
    assert.equals(3, rt.tokens:create())
  end)

  it("re-raises a string error with its position, as raised", function()
    local ok, msg = pcall(rt.atomic, rt, function() error("boom") end)
    assert.is_false(ok)
    assert.matches("atomic_spec.lua:%d+: boom$", msg)
    local ok2, msg2 = pcall(rt.atomic, rt, function() error("bare", 0) end)
    assert.is_false(ok2)
    assert.equals("bare", msg2)
  end)

  it("rolls back the grid: queries answer as before", function()
    local a = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
    assert.equals(1, #rt.grid:range_query({0, 0, 0}, 1, { space = "L1" }))
    pcall(rt.atomic, rt, function()
      rt.tokens:create{ coords = { L1 = {0.5, 0, 0} } }
      rt.tokens:update(a, { coords = { L1 = {10, 0, 0} } })
      assert.equals(1, #rt.grid:range_query({0, 0, 0}, 1, { space = "L1" })) -- its own writes
      error("undo")
    end)
    local hits = rt.grid:range_query({0, 0, 0}, 1, { space = "L1" })
    assert.equals(1, #hits)
    assert.equals(a, hits[1].id or hits[1][1])
  end)

  describe("nested", function()
    it("is a savepoint: an inner failure caught by pcall undoes only the inner writes", function()
      rt:atomic(function()
        rt.tokens:create{ weight = 1 }
        local ok = pcall(rt.atomic, rt, function()
          rt.tokens:create{ weight = 2 }
          rt.tokens:update(1, { weight = 50 })
          error("inner")
        end)
        assert.is_false(ok)
        assert.equals(1, rt.tokens:count())
        assert.equals(1, rt.tokens:get(1).weight)
        rt.tokens:create{ weight = 3 }
      end)
      assert.equals(2, rt.tokens:count())
      assert.equals(3, rt.tokens:get(2).weight)
    end)

    it("commits an inner success only with the outer one", function()
      pcall(rt.atomic, rt, function()
        rt:atomic(function() rt.tokens:create() end)
        assert.equals(1, rt.tokens:count())
        error("outer")
      end)
      assert.equals(0, rt.tokens:count())
    end)

    it("returns the inner function's results", function()
      local x = rt:atomic(function() return rt:atomic(function() return 42 end) end)
      assert.equals(42, x)
    end)
  end)

  it("checks its arguments", function()
    h.raises("bad argument #2 to 'atomic' (function expected, got no value)", rt.atomic, rt)
    h.raises("function expected, got 5", rt.atomic, rt, 5)
  end)

  it("raises for a closed runtime", function()
    rt:close()
    h.raises("closed", rt.atomic, rt, function() end)
  end)

  it("survives the runtime being closed inside fn", function()
    local r = ng.Runtime()
    r.tokens:create()
    assert.equals("fine", r:atomic(function()
      r:close()
      return "fine"
    end))
    assert.is_true(r:is_closed())
  end)

  it("lets other runtimes' writes through unaffected", function()
    local other = ng.Runtime()
    pcall(rt.atomic, rt, function()
      other.tokens:create()
      rt.tokens:create()
      error("undo")
    end)
    assert.equals(1, other.tokens:count())
    assert.equals(0, rt.tokens:count())
    other:close()
  end)
end)

describe("rt.tokens:create_many", function()
  local rt
  before_each(function() rt = ng.Runtime() end)
  after_each(function() rt:close() end)

  it("creates every entry in order and returns the ids", function()
    local ids = rt.tokens:create_many{ { weight = 1 }, {}, { weight = 3, coords = { L1 = {1, 1, 1} } } }
    assert.same({1, 2, 3}, ids)
    assert.equals(3, rt.tokens:get(3).weight)
    assert.same({}, rt.tokens:create_many{})
  end)

  it("creates nothing when one entry is bad, naming it", function()
    rt.tokens:create()
    local before = dump(rt)
    h.raises("create_many: entry 2: bad argument #2 to 'create' (weight must be within 0..100",
             rt.tokens.create_many, rt.tokens, { { weight = 1 }, { weight = 500 }, {} })
    assert.equals(before, dump(rt))
    assert.equals(2, rt.tokens:create())
  end)

  it("checks its argument", function()
    h.raises("bad argument #2 to 'create_many' (table of token field tables expected, got 5)",
             rt.tokens.create_many, rt.tokens, 5)
  end)

  it("inside rt:atomic is undone with it", function()
    pcall(rt.atomic, rt, function()
      rt.tokens:create_many{ {}, {} }
      error("undo")
    end)
    assert.equals(0, rt.tokens:count())
  end)
end)

describe("rt.connections:create_many", function()
  local rt, a, b, c
  before_each(function()
    rt = ng.Runtime()
    a, b, c = rt.tokens:create(), rt.tokens:create(), rt.tokens:create()
  end)
  after_each(function() rt:close() end)

  it("takes {from, to [, fields]} and {from =, to =, <fields>} entries", function()
    local ids = rt.connections:create_many{
      { a, b },
      { b, c, { type = "Cause" } },
      { from = c, to = a, type = "Near", pull_strength = 2 },
      { a, c, type = "Before" },
    }
    assert.same({1, 2, 3, 4}, ids)
    assert.equals("Before", rt.connections:get(4).type)
    assert.equals("Cause", rt.connections:get(2).type)
    assert.equals("Near", rt.connections:get(3).type)
    assert.equals(2, rt.connections:get(3).pull_strength)
    assert.equals(a, rt.connections:get(3).to)
  end)

  it("creates none when one fails (a duplicate), naming the entry", function()
    rt.connections:create(a, b)
    local before = dump(rt)
    h.raises("create_many: entry 2:", rt.connections.create_many, rt.connections,
             { { b, c }, { a, b }, { c, a } })
    assert.equals(before, dump(rt))
    assert.equals(2, rt.connections:create(c, b))
  end)

  it("refuses an entry that is not a table", function()
    h.raises("create_many: entry 1: {from, to [, fields]} expected, got 7",
             rt.connections.create_many, rt.connections, { 7 })
    assert.equals(0, rt.connections:count())
  end)
end)
