-- quickstart.lua: a first tour of neurograph. It builds a small town (objects in physical space,
-- the kinds they belong to in abstract space, a day of events in time), links them with typed
-- connections, asks the spatial grid three kinds of questions, switches the CDNA profile and
-- prints a short report.
--
--   scripts/run                                        sets everything up, then runs this file
--   build/ngrun examples/quickstart.lua                the same, once built
--   LUA_CPATH='build/?.so;;' lua5.4 examples/quickstart.lua    with a stock Lua

local ng = require "neurograph"

-- ngrun hands its runtime to the script in the global `runtime`; a stock lua5.4 makes its own.
local rt = rawget(_G, "runtime") or ng.Runtime()

-- A small linear congruential generator, so the town (and the report) is the same on every run.
local state = 20240601
local function random() -- uniform in [0, 1)
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local function around(center, spread) -- roughly bell-shaped around center
  return center + spread * (random() + random() + random() - 1.5)
end

local function printf(fmt, ...) print(fmt:format(...)) end
local function section(title, detail)
  printf("\n== %-12s %s", title, detail or "")
end

---------------------------------------------------------------------------------------------
-- Every token has a position in all eight spaces: the origin unless set. So the town and the
-- kinds are placed away from the origin, where the tokens that live in other spaces sit.

-- The kinds of things in town: concepts in the abstract space (L8), similar kinds close together.
local kinds = {
  { name = "tree",   at = { 2.3, 1.7, 1.0 } },
  { name = "bush",   at = { 2.2, 1.8, 1.1 } },
  { name = "flower", at = { 2.1, 2.0, 1.1 } },
  { name = "bench",  at = { 1.0, 2.1, 1.0 } },
  { name = "lamp",   at = { 0.9, 1.9, 1.2 } },
  { name = "stall",  at = { 1.3, 0.8, 1.1 } },
  { name = "cafe",   at = { 1.4, 0.7, 1.3 } },
  { name = "cat",    at = { 1.8, 1.2, 1.9 } },
  { name = "pigeon", at = { 1.9, 1.3, 1.8 } },
}
local kind_of_id = {}
for _, kind in ipairs(kinds) do
  kind.id = rt.tokens:create{ entity = "Concept", coords = { abstract = kind.at } }
  kind_of_id[kind.id] = kind
end
local function kind_named(name)
  for _, kind in ipairs(kinds) do if kind.name == name then return kind end end
end

-- The town square's fountain: the landmark the queries start from (physical space, L1, metres).
local fountain = rt.tokens:create{ entity = "Object", weight = 1.0,
                                   coords = { physical = { 100, 100, 0 } } }
kind_of_id[fountain] = { name = "fountain" }

-- Four districts, each with its own mix of things, scattered around their centres.
local districts = {
  { name = "park",    center = { 40, 150 },
    mix = { "tree", "tree", "bush", "flower", "bench", "pigeon" } },
  { name = "market",  center = { 150, 60 },
    mix = { "stall", "stall", "cafe", "lamp", "cat", "pigeon" } },
  { name = "square",  center = { 100, 100 },
    mix = { "bench", "lamp", "pigeon", "flower", "cafe" } },
  { name = "harbour", center = { 170, 170 },
    mix = { "lamp", "cat", "stall", "bench" } },
}
local objects, district_of = {}, {}
for _, d in ipairs(districts) do
  for _ = 1, 60 do
    local kind = kind_named(d.mix[1 + math.floor(random() * #d.mix)])
    local x, y = around(d.center[1], 20), around(d.center[2], 20)
    local id = rt.tokens:create{
      entity = "Object",
      weight = 0.25 + 0.75 * random(),
      coords = { physical = { x, y, kind.name == "pigeon" and 2 + 6 * random() or 0 } },
      field_radius = 1.5,
      field_strength = 0.5,
    }
    objects[#objects + 1], kind_of_id[id], district_of[id] = id, kind, d.name
  end
end

-- A day of events in the temporal space (L7, seconds from the morning bell; up to 327 s).
local events = {}
for i = 1, 24 do
  events[i] = rt.tokens:create{ entity = "Event", weight = 0.5,
                                coords = { temporal = { i * 12.5, 0, 0 } } }
end

printf("neurograph %s quickstart, on %s", ng._VERSION,
  rawget(_G, "runtime") and "ngrun's runtime" or "a runtime of its own")
section("World", ("%d tokens"):format(rt.tokens:count()))
printf("  %-9s %4d  in L1 physical, four districts of 60 around a fountain", "objects",
  #objects + 1)
printf("  %-9s %4d  in L8 abstract, one per kind of thing", "concepts", #kinds)
printf("  %-9s %4d  in L7 temporal, one every 12.5 s", "events", #events)

---------------------------------------------------------------------------------------------
-- Typed connections: what each thing is, what stands near what, and what happened in order.
local made = { InstanceOf = 0, Near = 0, Before = 0, Cause = 0 }
local function connect(a, b, kind, opts)
  opts = opts or {}
  opts.type = kind
  rt.connections:create(a, b, opts)
  made[kind] = made[kind] + 1
end

for _, id in ipairs(objects) do
  connect(id, kind_of_id[id].id, "InstanceOf", { confidence = 1.0 })
end
for _, id in ipairs(objects) do -- pairs closer than 3 m, each pair once
  for _, hit in ipairs(rt.grid:find_neighbors(id, 3, { space = "physical" })) do
    if hit[1] > id and district_of[hit[1]] then
      connect(id, hit[1], "Near", { bidirectional = true, preferred_distance = hit[2] })
    end
  end
end
for i = 1, #events - 1 do
  connect(events[i], events[i + 1], "Before")
  if i % 6 == 0 then connect(events[i], events[i + 1], "Cause", { pull_strength = 0.8 }) end
end

section("Connections", ("%d typed links"):format(rt.connections:count()))
printf("  %-11s %4d  object -> the concept it is an instance of", "InstanceOf", made.InstanceOf)
printf("  %-11s %4d  objects less than 3 m apart (bidirectional)", "Near", made.Near)
printf("  %-11s %4d  event -> the next event", "Before", made.Before)
printf("  %-11s %4d  every sixth event caused the next", "Cause", made.Cause)

---------------------------------------------------------------------------------------------
-- Queries. Every answer is a list of { id, distance }, closest first (ties by id).
local function describe(id)
  local kind = kind_of_id[id]
  return ("%-8s %s"):format(kind.name, district_of[id] or "")
end
local function show(hits, n)
  for i = 1, math.min(n, #hits) do
    printf("    %2d. token %-4d %6.2f  %s", i, hits[i][1], hits[i][2], describe(hits[i][1]))
  end
end

section("Neighbours", "find_neighbors(fountain, 12 m) in L1 physical")
local near = rt.grid:find_neighbors(fountain, 12, { space = "physical" })
printf("  %d tokens within 12 m of the fountain; the closest five:", #near)
show(near, 5)

section("Range", "range_query({150, 60, 0}, 10 m) in L1 physical: the market's heart")
local market = rt.grid:range_query({ 150, 60, 0 }, 10, { space = "physical" })
local tally, names = {}, {}
for _, hit in ipairs(market) do
  local name = kind_of_id[hit[1]].name
  if not tally[name] then names[#names + 1] = name end
  tally[name] = (tally[name] or 0) + 1
end
table.sort(names, function(a, b) return tally[a] > tally[b] or (tally[a] == tally[b] and a < b) end)
for i, name in ipairs(names) do names[i] = ("%d %s"):format(tally[name], name) end
printf("  %d tokens: %s", #market, table.concat(names, ", "))

section("Nearest", "nearest(tree, 4) in L8 abstract: the kinds most like a tree")
local tree = kind_named("tree")
for i, hit in ipairs(rt.grid:nearest(tree.at, 4, { space = "abstract" })) do
  printf("    %2d. %-8s %6.3f", i, kind_of_id[hit[1]].name, hit[2])
end

---------------------------------------------------------------------------------------------
-- The CDNA: the runtime's configuration block. Profiles are presets of its limits.
local function profile_name()
  local p = rt.cdna:get_profile()
  return type(p) == "number" and ng.profiles[p] or p
end
local before, from = rt.cdna:get_config(), profile_name()
rt.cdna:set_profile("Explorer")
local after = rt.cdna:get_config()
section("CDNA", ("profile %s -> %s"):format(from, profile_name()))
for _, field in ipairs({ "max_out_degree", "max_total_degree", "mutation_rate" }) do
  printf("  %-17s %8s -> %s", field, tostring(before[field]), tostring(after[field]))
end
local ok, why = rt.cdna:validate()
printf("  %-17s %8s", "validate()", ok and "ok" or ("failed: " .. tostring(why)))

printf("\nDone: %d tokens, %d connections. Next: examples/runtime_storage.lua, docs/.",
  rt.tokens:count(), rt.connections:count())
