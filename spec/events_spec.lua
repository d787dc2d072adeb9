-- rt.events and rt.grid:watch: the change feed seen from Lua.
local h = require "spec.helpers"
local ng = h.ng

local function drain(sub)
  local out = {}
  for ev in sub:poll() do out[#out + 1] = ev end
  return out
end

local function kinds(evs)
  local k = {}
  for i, ev in ipairs(evs) do k[i] = ev.kind end
  return table.concat(k, ",")
end

describe("rt.events:subscribe", function()
  it("sees every kind of write, in commit order", function()
    local rt = ng.Runtime()
    local sub = rt.events:subscribe()
    local a = rt.tokens:create{ coords = { L1 = {1, 2, 3} } }
    local b = rt.tokens:create{ coords = { L1 = {4, 5, 6} } }
    rt.tokens:update(a, { weight = 7 })
    rt.tokens:update(a, { coords = { L1 = {10, 20, 30} } })
    rt.tokens:get(a):unplace("L1")
    local c = rt.connections:create(a, b)
    rt.connections:update(c, { pull_strength = 2 })
    rt.connections:delete(c)
    rt.connections:create(b, a)
    rt.tokens:delete(b)
    rt.cdna:set_profile("Explorer")
    local evs = drain(sub)
    assert.equals("create,create,update,move,unplace,link,link_update,unlink,link,unlink,delete,cdna",
                  kinds(evs))
    assert.equals(a, evs[1].id)
    assert.equals("weight", evs[3].fields[1])
    assert.is_true(evs[3].fields.weight)
    assert.equals("L1", evs[4].space)
    assert.same({1, 2, 3}, evs[4].from)
    assert.same({10, 20, 30}, evs[4].to)
    assert.equals("L1", evs[5].space)
    assert.same({10, 20, 30}, evs[5].from)
    assert.equals(c, evs[6].id)
    assert.equals(a, evs[6].from)
    assert.equals(b, evs[6].to)
    assert.is_true(evs[7].fields.pull_strength)
    assert.equals(b, evs[11].id)
    for i, ev in ipairs(evs) do assert.equals(i, ev.seq) end
    assert.equals(evs[10].commit, evs[11].commit) -- the unlink went with its token
    assert.is_false(evs[10].last)
    assert.is_true(evs[11].last)
    assert.equals(0, sub:lost())
    sub:close()
    sub:close()
    h.raises("closed", function() sub:lost() end)
  end)

  it("gets a batch or a transaction as one commit, and nothing rolled back", function()
    local rt = ng.Runtime()
    local ids = { rt.tokens:create{ coords = { L1 = {0, 0, 0} } }, rt.tokens:create{ coords = { L1 = {1, 0, 0} } } }
    local sub = rt.events:subscribe{ kinds = {"move", "create", "delete"} }
    rt.tokens:move("L1", ids, {5, 5, 5, 6, 6, 6})
    local evs = drain(sub)
    assert.equals("move,move", kinds(evs))
    assert.equals(evs[1].commit, evs[2].commit)
    rt:atomic(function()
      rt.tokens:create()
      rt.tokens:delete(ids[1])
    end)
    evs = drain(sub)
    assert.equals("create,delete", kinds(evs))
    assert.equals(evs[1].commit, evs[2].commit)
    pcall(rt.atomic, rt, function()
      rt.tokens:create()
      error("no")
    end)
    assert.equals("", kinds(drain(sub)))
    rt:atomic(function()
      rt.tokens:create()
      pcall(rt.atomic, rt, function() rt.tokens:delete(ids[2]); error("inner") end)
    end)
    assert.equals("create", kinds(drain(sub)))
    rt.tokens:create_many{ {}, {} }
    evs = drain(sub)
    assert.equals("create,create", kinds(evs))
    assert.equals(evs[1].commit, evs[2].commit)
  end)

  it("filters by kind, space and entity", function()
    local rt = ng.Runtime()
    local sub = rt.events:subscribe{ kinds = {"move", "delete"}, space = "L1" }
    local objs = rt.events:subscribe{ entity = "Object" }
    local a = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
    local b = rt.tokens:create{ coords = { L2 = {0, 0, 0} }, entity = "Object" }
    rt.tokens:update(a, { coords = { L1 = {1, 1, 1} } })
    rt.tokens:update(b, { coords = { L2 = {0.1, 0, 0} } })
    rt.tokens:delete(a)
    rt.tokens:delete(b)
    local evs = drain(sub)
    assert.equals("move,delete", kinds(evs))
    assert.equals(a, evs[1].id)
    assert.equals("create,move,delete", kinds(drain(objs)))
    h.raises("unknown event kind 'mvoe' (did you mean 'move'?)",
             function() rt.events:subscribe{ kinds = {"mvoe"} } end)
    h.raises("unknown option", function() rt.events:subscribe{ kind = {"move"} } end)
    h.raises("cap", function() rt.events:subscribe{ cap = 0 } end)
  end)

  it("drops past its cap, counts the loss and reports it once", function()
    local rt = ng.Runtime()
    local sub = rt.events:subscribe{ cap = 3 }
    for _ = 1, 10 do rt.tokens:create() end
    assert.equals(3, #drain(sub))
    assert.equals(7, sub:lost())
    assert.equals(0, sub:lost())
    rt.tokens:create()
    local evs = drain(sub)
    assert.equals(11, evs[1].seq)
  end)

  it("records nothing with ENABLE_EVENTS cleared", function()
    local rt = ng.Runtime()
    local sub = rt.events:subscribe()
    local flags = rt.cdna:get_flags()
    rt.cdna:set_flags(flags - h.band(flags, ng.cdna_flags.ENABLE_EVENTS))
    drain(sub)
    rt.tokens:create()
    rt.grid:watch{ center = {0, 0, 0}, radius = 10 }
    assert.equals(0, #drain(sub))
    rt.cdna:set_flags(flags)
    rt.tokens:create()
    assert.equals("create", kinds(drain(sub)))
  end)
end)

describe("rt.events:on and dispatch", function()
  it("runs handlers in feed order outside the lock, writes queue after", function()
    local rt = ng.Runtime()
    local seen = {}
    rt.events:on("create", function(ev)
      seen[#seen + 1] = "create " .. ev.id
      if ev.id == 1 then rt.tokens:update(ev.id, { weight = 3 }) end
    end)
    rt.events:on("update", function(ev) seen[#seen + 1] = "update " .. ev.id end)
    rt.events:on("create", function(ev) seen[#seen + 1] = "again " .. ev.id end)
    rt.tokens:create()
    rt.tokens:create()
    assert.equals(2, rt.events:dispatch())
    assert.same({"create 1", "again 1", "create 2", "again 2"}, seen)
    assert.equals(1, rt.events:dispatch())
    assert.equals("update 1", seen[5])
    assert.equals(0, rt.events:dispatch())
    h.raises("function expected", function() rt.events:on("create", 1) end)
    h.raises("unknown event kind", function() rt.events:on("created", print) end)
  end)
end)

describe("rt.grid:watch", function()
  it("reports enter and leave once per crossing", function()
    local rt = ng.Runtime()
    local a = rt.tokens:create{ coords = { L1 = {0, 0, 0} } }
    local sub = rt.events:subscribe{ kinds = {"enter", "leave"} }
    local zone = rt.grid:watch{ space = "L1", center = {0, 0, 0}, radius = 5 }
    local evs = drain(sub)
    assert.equals("enter", kinds(evs))
    assert.equals(a, evs[1].id)
    assert.equals(zone.id, evs[1].zone)
    assert.equals("L1", evs[1].space)
    rt.tokens:update(a, { coords = { L1 = {1, 1, 1} } }) -- stays inside
    rt.tokens:update(a, { coords = { L1 = {10, 0, 0} } })
    rt.tokens:update(a, { coords = { L1 = {20, 0, 0} } }) -- stays outside
    assert.equals("leave", kinds(drain(sub)))
    zone:set{ center = {20, 0, 0} }
    assert.equals("enter", kinds(drain(sub)))
    zone:set{ radius = 0.5, center = {0, 0, 0} }
    assert.equals("leave", kinds(drain(sub)))
    local box = rt.grid:watch{ box = { {-1, -1, -1}, {1, 1, 1} }, entity = "Object" }
    local o = rt.tokens:create{ coords = { L1 = {0, 0, 0} }, entity = "Object" }
    evs = drain(sub)
    assert.equals("enter,enter", kinds(evs))
    local zones = { evs[1].zone, evs[2].zone }
    table.sort(zones)
    assert.same({ zone.id, box.id }, zones)
    rt.tokens:delete(o)
    assert.equals("leave,leave", kinds(drain(sub)))
    box:remove()
    h.raises("no zone", function() box:remove() end)
    h.raises("center and radius, or box", function() rt.grid:watch{ space = "L1" } end)
    h.raises("radius must be >= 0", function() rt.grid:watch{ center = {0, 0, 0}, radius = -1 } end)
    h.raises("unknown option", function() rt.grid:watch{ centre = {0, 0, 0}, radius = 1 } end)
  end)

  it("matches a brute-force model over random moves", function()
    math.randomseed(17)
    local rt = ng.Runtime()
    local sub = rt.events:subscribe{ kinds = {"enter", "leave"}, cap = h.pow2(20) }
    local zones, inside = {}, {}
    for i = 1, 8 do
      local c = { math.random(-50, 50), math.random(-50, 50), 0 }
      local r = math.random(5, 30)
      zones[i] = { z = rt.grid:watch{ center = c, radius = r }, c = c, r = r }
    end
    local ids = {}
    for i = 1, 30 do ids[i] = rt.tokens:create{ coords = { L1 = {math.random(-60, 60), math.random(-60, 60), 0} } } end
    local function model_in(z, p)
      local d = 0
      for k = 1, 3 do d = d + (p[k] - z.c[k]) ^ 2 end
      return d <= z.r * z.r
    end
    for _ = 1, 500 do
      local xyz = {}
      for _ = 1, #ids do
        xyz[#xyz + 1] = math.random(-60, 60); xyz[#xyz + 1] = math.random(-60, 60); xyz[#xyz + 1] = 0
      end
      rt.tokens:move("L1", ids, xyz)
      for ev in sub:poll() do
        local key = ev.zone .. ":" .. ev.id
        assert.are_not.equal(ev.kind == "enter", inside[key] == true)
        inside[key] = ev.kind == "enter" or nil
      end
      for _, id in ipairs(ids) do
        local p = { rt.tokens:get(id):coords("L1") }
        for _, z in ipairs(zones) do
          assert.equals(model_in(z, p), inside[z.z.id .. ":" .. id] == true)
        end
      end
    end
    assert.equals(0, sub:lost())
  end)
end)
