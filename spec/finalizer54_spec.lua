-- Lua 5.4 only (CMake leaves *54_spec.lua out before 5.4; finalizer_spec.lua runs on every
-- Lua): the hammer times finalizers by 5.4's generational collector, which 5.3, 5.1 and LuaJIT
-- do not have.
-- A finalizer can run in the middle of any binding call (the call allocates Lua tables and
-- strings): one that closes the runtime or queries it again must neither crash the call nor
-- fool it. Run under ASan in CI (.ci/run), where a use-after-free is an abort, not luck.
local h = require "spec.helpers"
local ng = h.ng

-- Runs `call(rt, state)` once per round while finalizers run `action(state)` at a chosen point
-- of the call. In generational mode every minor collection runs the pending finalizers, and
-- one happens when the bytes allocated since the last reach a share of the heap (1%, by the
-- minor multiplier 1). Each round starts a minor collection, leaves garbage with finalizers,
-- then allocates until the next collection is `offset` bytes away: the call's allocation that
-- crosses it runs the finalizers. The offset grows by `stride` each round, so the rounds visit
-- the allocation points of the call one after another. A call either completes (`check`, if
-- given, gets its results) or raises "runtime is closed" (the close came before it used the
-- runtime). Returns how many actions ran during a call.
local function hammer(make_rt, call, action, opts)
  opts = opts or {}
  local state = { rt = make_rt(), inside = false, ran = 0 }
  local function fire()
    if state.inside then
      state.ran = state.ran + 1
      action(state)
    end
  end
  local finalized = { __gc = fire }
  collectgarbage("generational", 1, 100)
  local ok_all, err_all = pcall(function()
    for round = 1, opts.rounds or 60 do
      collectgarbage("step", 0) -- a minor collection now; the next one after 1% of the heap
      local start = collectgarbage("count") * 1024
      local budget = math.floor(start / 100) - 8 * round * (opts.stride or 3)
      for _ = 1, 8 do setmetatable({}, finalized) end
      local last = start
      repeat -- until the budget is spent, or a collection came early (the count dropped)
        local _ = {}
        local now = collectgarbage("count") * 1024
        local early = now < last
        last = now
      until early or now - start >= budget
      state.inside = true
      local ok, r1, r2 = pcall(call, state.rt, state)
      state.inside = false
      if ok then
        if opts.check then opts.check(state, r1, r2) end
      else
        assert(tostring(r1):find("runtime is closed", 1, true), tostring(r1))
      end
      if state.rt:is_closed() then state.rt = make_rt() end
    end
  end)
  state.inside = false
  collectgarbage("incremental")
  collectgarbage()
  assert(ok_all, err_all)
  if os.getenv("NG_FIN_DEBUG") then io.stderr:write(state.ran, " ") end
  return state.ran
end

-- A runtime with tokens on a grid, connections between neighbours, and a saved handle of each.
local N = 200
local function populated()
  local rt = ng.Runtime()
  for i = 1, N do
    rt.tokens:create{ weight = 1, coords = { L1 = { (i % 20) / 2, (i // 20) / 2, 0 } } }
  end
  for i = 1, N - 1 do rt.connections:create(i, i + 1) end
  return rt
end

local function close(state) state.rt:close() end

-- A finalizer that queries the same runtime (every kind of query), then closes it.
local function requery_then_close(state)
  local rt = state.rt
  if rt:is_closed() then return end
  pcall(function()
    assert(#rt.grid:range_query({5, 5, 0}, 100) == rt.tokens:count())
    assert(#rt.tokens:list() == rt.tokens:count())
    rt.grid:nearest({1, 1, 0}, 5, { into = {} })
    rt.grid:box({0, 0, 0}, {3, 3, 0})
    rt.connections:list()
    local t = rt.tokens:get(1)
    if t then local _ = t.weight; t:connections() end
    rt:stats()
  end)
  if state.ran % 3 == 0 then rt:close() end
end

local into = {}
local snapshot = os.tmpname()
local calls = {
  ["tokens:create"] = function(rt) return rt.tokens:create{ weight = 0.5, entity = "Concept",
                                                             coords = { L1 = {1, 2, 3} } } end,
  ["tokens:get"] = function(rt) return rt.tokens:get(5) end,
  ["tokens:update"] = function(rt) return rt.tokens:update(5, { weight = 2, entity = "Event" }) end,
  ["tokens:delete"] = function(rt) rt.tokens:create{}; return rt.tokens:delete(rt.tokens:count()) end,
  ["tokens:list"] = function(rt) return rt.tokens:list() end,
  ["tokens:list into"] = function(rt) return rt.tokens:list(nil, nil, into) end,
  ["tokens:iter"] = function(rt) local n = 0; for _ in rt.tokens:iter() do n = n + 1 end; return n end,
  ["tokens:move"] = function(rt) return rt.tokens:move("L1", {1, 2}, {1, 1, 1, 2, 2, 2}) end,
  ["tokens:exists/count"] = function(rt) return rt.tokens:exists(3), rt.tokens:count() end,
  ["connections:create"] = function(rt)
    return rt.connections:create(1, rt.tokens:create{}, { type = "Cause" })
  end,
  ["connections:list"] = function(rt) return rt.connections:list(nil, nil, into) end,
  ["connections:get"] = function(rt) local c = rt.connections:get(1); return c and c:to_table() end,
  ["connections:update/find"] = function(rt)
    rt.connections:update(1, { confidence = 0.5, bidirectional = true })
    return rt.connections:find(1, 2)
  end,
  ["connections:iter"] = function(rt) local n = 0; for _ in rt.connections:iter() do n = n + 1 end; return n end,
  ["connection handle"] = function(rt)
    local c = rt.connections:get(2)
    c.rigidity = 0.25
    return c.rigidity, c.type, c.target_vector, c:activate(), c:force(1.5)
  end,
  ["token handle"] = function(rt)
    local t = rt.tokens:get(4)
    t.weight = 3
    t.entity = "Object"
    t:set_coords("L2", 1, 2, 3)
    return t.weight, t.entity, t:coords("L2"), t:to_table(), t:connections("both")
  end,
  ["grid:range_query"] = function(rt) return rt.grid:range_query({5, 5, 0}, 100) end,
  ["grid:range_query into"] = function(rt) return rt.grid:range_query({5, 5, 0}, 100, { into = into }) end,
  ["grid:nearest"] = function(rt) return rt.grid:nearest({2, 2, 0}, 50) end,
  ["grid:box"] = function(rt) return rt.grid:box({0, 0, 0}, {10, 10, 0}, { into = into }) end,
  ["grid:find_neighbors"] = function(rt) return rt.grid:find_neighbors(10, 100) end,
  ["grid:info"] = function(rt) return rt.grid:info{ space = "L1" } end,
  ["cdna"] = function(rt)
    rt.cdna:set("max_out_degree", 500)
    rt.cdna:update_scales{ 100, 100, 100, 100, 100, 100, 100, 10000 }
    return rt.cdna:get_config(), rt.cdna:get("bucket_sizes"), rt.cdna:set_profile("Explorer")
  end,
  ["stats/tostring"] = function(rt) return rt:stats(), tostring(rt), tostring(rt.tokens) end,
  ["save"] = function(rt) return rt:save(snapshot) end,
}

-- Calls that run no Lua code at all (a list into a table big enough, a save, a count): no finalizer
-- can run inside them, which is how they stay safe; the others must have been interrupted.
local quiet = { ["tokens:list into"] = true, ["connections:list"] = true, ["save"] = true,
                ["tokens:exists/count"] = true }

describe("a finalizer during a binding call", function()
  for name, call in pairs(calls) do
    it("that closes the runtime cannot break " .. name, function()
      local ran = hammer(populated, call, close)
      assert.is_true(quiet[name] or ran > 0, "no finalizer ran inside the call")
    end)
    it("that queries the runtime again, then closes it, cannot break " .. name, function()
      local ran = hammer(populated, call, requery_then_close)
      assert.is_true(quiet[name] or ran > 0, "no finalizer ran inside the call")
    end)
  end
  teardown(function() os.remove(snapshot) end)

  it("that closes it lets a running query finish with its full result", function()
    local ran = hammer(populated, function(rt) return rt.grid:range_query({5, 5, 0}, 100) end,
                       close, { rounds = 30, stride = 80, check = function(_, hits)
                         assert.equals(N, #hits)
                         for i = 1, #hits do assert.equals("number", type(hits[i][1])) end
                       end })
    assert.is_true(ran > 0, "no finalizer ran inside a query: the test tests nothing")
  end)

  it("closes the runtime when the call ends: later calls raise 'runtime is closed'", function()
    hammer(populated, function(rt) return rt.grid:range_query({5, 5, 0}, 100) end,
           close, { rounds = 30, stride = 80, check = function(state)
             if state.rt:is_closed() then
               h.raises("runtime is closed", function() state.rt.tokens:count() end)
             end
           end })
  end)

  it("survives the reproducer of issue 11 (stock lua5.4 segfaulted)", function()
    local rt = ng.Runtime()
    for i = 1, 5000 do rt.tokens:create{coords = {L1 = {(i % 100) / 10, (i // 100) / 10, 0}}} end
    local inside = false
    collectgarbage("incremental", 100, 1000)
    for _ = 1, 200 do
      for _ = 1, 50 do setmetatable({}, {__gc = function() if inside then rt:close() end end}) end
      inside = true; pcall(function() return #rt.grid:range_query({5, 2.5, 0}, 100) end); inside = false
      if rt:is_closed() then rt = ng.Runtime() end
    end
    collectgarbage("incremental", 200, 100)
    collectgarbage()
  end)
end)
