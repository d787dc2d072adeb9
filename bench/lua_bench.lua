-- Lua-side benchmark of the neurograph module: each figure is a ratio against a plain-Lua baseline
-- measured in the same run. Run: LUA_CPATH='build/?.so;;' lua5.4 bench/lua_bench.lua [scale]
-- (any supported Lua: LUA_CPATH='build-luajit/?.so;;' luajit bench/lua_bench.lua; scripts/bench
-- runs it on Lua 5.4 and on LuaJIT)
-- (NG_BENCH_QUICK=1 or a scale below 1 shrinks the sizes for a smoke run).
local ng = require "neurograph"

local scale = tonumber(arg and arg[1]) or (os.getenv("NG_BENCH_QUICK") and 0.02 or 1)
local N_CREATE = math.max(1000, math.floor(200000 * scale))
local N_GET = math.max(1000, math.floor(1000000 * scale))
local N_POINTS = math.max(1000, math.floor(20000 * scale))
local N_QUERY = math.max(100, math.floor(5000 * scale))
local REPEAT = 3

local clock = os.clock

-- Best CPU time of REPEAT runs of fn(); setup() runs untimed before each.
local function best(setup, fn)
  local t = math.huge
  for _ = 1, REPEAT do
    local state = setup and setup() or nil
    collectgarbage()
    local t0 = clock()
    fn(state)
    local dt = clock() - t0
    if dt < t then t = dt end
  end
  return t
end

local function report(name, t, n, base_name, tb)
  print(string.format("%-40s %9.1f ns/op   %-26s %11.1f ns/op   ratio %7.4f",
                      name, t / n * 1e9, base_name, tb / n * 1e9, t / tb))
  return t / tb
end

local jit = rawget(_G, "jit") -- LuaJIT's version says more than its _VERSION ("Lua 5.1")
print(string.format("neurograph %s Lua benchmark (%s, sizes x%g)", ng._VERSION,
                    jit and jit.version or _VERSION, scale))
print()

-- 1. create vs building the same plain table (kept in an array, as a Lua store would)
local function coords_of(i) return (i % 2000) / 10 - 100, (i % 997) / 10, (i % 13) end
local kept -- the last plain store, so the baseline's tables stay alive as a store's would
local t_plain = best(nil, function()
  local store = {}
  for i = 1, N_CREATE do
    local x, y, z = coords_of(i)
    store[i] = { weight = 1.0, entity = "Concept", coords = { L1 = {x, y, z} } }
  end
  kept = store
end)
local t_create = best(function() return ng.Runtime{ initial_tokens = N_CREATE } end, function(rt)
  local tokens = rt.tokens
  for i = 1, N_CREATE do
    local x, y, z = coords_of(i)
    tokens:create{ weight = 1.0, entity = "Concept", coords = { L1 = {x, y, z} } }
  end
  rt:close()
end)
local r_create = report("rt.tokens:create{...}", t_create, N_CREATE, "plain table {...}", t_plain)

-- 2. get + one field read vs indexing a plain table
local rt = ng.Runtime{ initial_tokens = N_POINTS }
local plain = {}
for i = 1, N_POINTS do
  local x, y, z = coords_of(i)
  rt.tokens:create{ weight = 0.5, coords = { L1 = {x, y, z} } }
  plain[i] = { weight = 0.5, coords = { L1 = {x, y, z} } }
end
local sink = 0
local t_pget = best(nil, function()
  local s = 0
  for i = 1, N_GET do s = s + plain[i % N_POINTS + 1].weight end
  sink = sink + s
end)
local t_get = best(nil, function()
  local tokens, s = rt.tokens, 0
  for i = 1, N_GET do s = s + tokens:get(i % N_POINTS + 1).weight end
  sink = sink + s
end)
report("rt.tokens:get(id).weight", t_get, N_GET, "plain[id].weight", t_pget)

-- 3. radius query into a reused table vs a brute-force scan of plain tables
local R = 5
local function centre(i) return { (i * 37 % 2000) / 10 - 100, (i * 53 % 997) / 10, 6 } end
local found_plain, found_ng = 0, 0
local t_scan = best(nil, function()
  local out = {} -- the scan writes its hits, as the query does
  for q = 1, N_QUERY do
    local c = centre(q)
    local n = 0
    for i = 1, N_POINTS do
      local p = plain[i].coords.L1
      local dx, dy, dz = p[1] - c[1], p[2] - c[2], p[3] - c[3]
      local d = math.sqrt(dx * dx + dy * dy + dz * dz)
      if d <= R then n = n + 1; out[n] = i end
    end
    found_plain = found_plain + n
  end
  kept = out
end)
local into = {}
local opts = { space = "L1", into = into }
local grid = rt.grid
local t_query = best(nil, function()
  found_ng = 0
  for q = 1, N_QUERY do
    found_ng = found_ng + #grid:range_query(centre(q), R, opts)
  end
end)
report("rt.grid:range_query(c, r, {into = t})", t_query, N_QUERY, "Lua brute-force scan", t_scan)

-- garbage per query once the result table has grown (centre tables excluded: made up front)
local centres = {}
for q = 1, N_QUERY do centres[q] = centre(q) end
grid:range_query(centres[1], R * 4, opts) -- grow the result table once
collectgarbage()
collectgarbage("stop")
local kb0 = collectgarbage("count")
for q = 1, N_QUERY do grid:range_query(centres[q], R, opts) end
local kb = collectgarbage("count") - kb0
collectgarbage("restart")
print(string.format("%-40s %9.1f bytes/query (average hits %.1f; brute force found %.1f)",
                    "garbage per query into a reused table", kb * 1024 / N_QUERY,
                    found_ng / N_QUERY, found_plain / N_QUERY / REPEAT))
-- 4. a frame moving 10% of the tokens: rt.tokens:move (one call, flat arrays reused) vs one
-- tok:set_coords per token vs rewriting the positions of plain tables
local M, FRAMES = math.floor(N_POINTS / 10), 20
local frames = {} -- planned up front: the timed loops only move
for f = 1, FRAMES do
  local ids, xyz = {}, {}
  for j = 1, M do
    local i = (j * 7919 + f * 104729) % N_POINTS + 1
    ids[j] = i
    xyz[3 * j - 2], xyz[3 * j - 1], xyz[3 * j] = coords_of(i + f)
  end
  frames[f] = {ids, xyz}
end
local t_pmove = best(nil, function()
  for f = 1, FRAMES do
    local ids, xyz = frames[f][1], frames[f][2]
    for j = 1, M do
      local p = plain[ids[j]].coords.L1
      p[1], p[2], p[3] = xyz[3 * j - 2], xyz[3 * j - 1], xyz[3 * j]
    end
  end
end)
grid:range_query(centres[1], R, opts) -- the L1 index exists, as in a game loop
local t_move = best(nil, function()
  local tokens = rt.tokens
  for f = 1, FRAMES do tokens:move("L1", frames[f][1], frames[f][2]) end
end)
local t_setc = best(nil, function()
  local tokens = rt.tokens
  for f = 1, FRAMES do
    local ids, xyz = frames[f][1], frames[f][2]
    for j = 1, M do
      tokens:get(ids[j]):set_coords("L1", xyz[3 * j - 2], xyz[3 * j - 1], xyz[3 * j])
    end
  end
end)
report("rt.tokens:move (10% a frame), per token", t_move, FRAMES * M, "plain positions rewritten",
       t_pmove)
report("tok:set_coords one by one, per token", t_setc, FRAMES * M, "plain positions rewritten",
       t_pmove)
-- 5. a perception frame: N_FRAME agents each ask for what is within R_SEE of where they stand,
-- with positions ({id, distance, x, y, z}) and a filter (not itself), into one reused table, vs the
-- same frame done in Lua with a spatial hash of cell R_SEE (built before the frame, untimed:
-- a static world; a moving one would also rebuild or update it every frame).
local N_FRAME = math.max(200, math.floor(20000 * scale))
local R_SEE = 3
local agents = {}
for q = 1, N_FRAME do agents[q] = (q * 7919) % N_POINTS + 1 end
local hash, pos = {}, {}
local function cell_key(cx, cy, cz) return (cx * 4096 + cy) * 4096 + cz end
local floor, sqrt = math.floor, math.sqrt
local xyz = rt.tokens:positions("L1", (function()
  local all = {}
  for i = 1, N_POINTS do all[i] = i end
  return all
end)())
for i = 1, N_POINTS do
  local x, y, z = xyz[3 * i - 2], xyz[3 * i - 1], xyz[3 * i]
  pos[i] = {x, y, z}
  local k = cell_key(floor(x / R_SEE) + 2048, floor(y / R_SEE) + 2048, floor(z / R_SEE) + 2048)
  local list = hash[k]
  if not list then list = {}; hash[k] = list end
  list[#list + 1] = i
end
-- The library keeps a hit when its float distance is <= the radius (docs/api.md): a point
-- on the sphere (the lattice below has many at exactly R_SEE) may fall either side of it in
-- this double-precision reference, so those within EDGE of the boundary are counted apart.
local EDGE = 1e-4
local seen_hash, seen_edge, seen_ng = 0, 0, 0
local hout = {}
local t_hash = best(nil, function()
  seen_hash, seen_edge = 0, 0
  for q = 1, N_FRAME do
    local me = agents[q]
    local p = pos[me]
    local px, py, pz = p[1], p[2], p[3]
    local cx, cy, cz = floor(px / R_SEE) + 2048, floor(py / R_SEE) + 2048, floor(pz / R_SEE) + 2048
    local n = 0
    for dx = -1, 1 do
      for dy = -1, 1 do
        for dz = -1, 1 do
          local list = hash[cell_key(cx + dx, cy + dy, cz + dz)]
          if list then
            for j = 1, #list do
              local id = list[j]
              if id ~= me then
                local o = pos[id]
                local ex, ey, ez = o[1] - px, o[2] - py, o[3] - pz
                local d = sqrt(ex * ex + ey * ey + ez * ez)
                if d <= R_SEE + EDGE then
                  if d >= R_SEE - EDGE then seen_edge = seen_edge + 1 end
                  n = n + 1
                  local hit = hout[n]
                  if not hit then hit = {}; hout[n] = hit end
                  hit[1], hit[2], hit[3], hit[4], hit[5] = id, d, o[1], o[2], o[3]
                end
              end
            end
          end
        end
      end
    end
    seen_hash = seen_hash + n
  end
end)
local seen = { space = "L1", into = {}, positions = true, exclude = {0} }
local exclude, eye = seen.exclude, {0, 0, 0}
local t_frame = best(nil, function()
  seen_ng = 0
  for q = 1, N_FRAME do
    local me = agents[q]
    local p = pos[me]
    eye[1], eye[2], eye[3] = p[1], p[2], p[3]
    exclude[1] = me
    seen_ng = seen_ng + #grid:range_query(eye, R_SEE, seen)
  end
end)
assert(seen_ng <= seen_hash and seen_ng >= seen_hash - seen_edge,
       string.format("perception frame: %d hits, the hash found %d (%d of them on the boundary)",
                     seen_ng, seen_hash, seen_edge))
report(string.format("perception frame (%d queries, positions)", N_FRAME), t_frame, N_FRAME,
       "Lua spatial hash", t_hash)
print(string.format("%-40s %9.2f ms a frame (average hits %.1f)", "  the frame through neurograph",
                    t_frame * 1e3, seen_ng / N_FRAME))
rt:close()

-- 5. transactions: creates inside one rt:atomic vs the same creates outside (each its own
-- commit), and the create_many batches vs the same creates one by one
local N_TXN = math.max(1000, math.floor(100000 * scale))
local function fresh() return ng.Runtime{ initial_tokens = N_TXN } end
local function create_all(r)
  local tokens = r.tokens
  for i = 1, N_TXN do
    local x, y, z = coords_of(i)
    tokens:create{ weight = 1.0, coords = { L1 = {x, y, z} } }
  end
end
local t_out = best(fresh, function(r) create_all(r); r:close() end)
local t_in = best(fresh, function(r) r:atomic(create_all, r); r:close() end)
local r_atomic = report("creates inside one rt:atomic", t_in, N_TXN, "the same creates outside", t_out)
local specs = {}
for i = 1, N_TXN do
  local x, y, z = coords_of(i)
  specs[i] = { weight = 1.0, coords = { L1 = {x, y, z} } }
end
local t_one = best(fresh, function(r)
  local tokens = r.tokens
  for i = 1, N_TXN do tokens:create(specs[i]) end
  r:close()
end)
local t_many = best(fresh, function(r) r.tokens:create_many(specs); r:close() end)
report("rt.tokens:create_many(list), per token", t_many, N_TXN, "rt.tokens:create one by one", t_one)
local links = {}
for i = 1, N_TXN do links[i] = { i, i % N_TXN + 1 } end
local function linked()
  local r = fresh()
  r.tokens:create_many(specs)
  return r
end
local t_lone = best(linked, function(r)
  local conns = r.connections
  for i = 1, N_TXN do conns:create(links[i][1], links[i][2]) end
  r:close()
end)
local t_lmany = best(linked, function(r) r.connections:create_many(links); r:close() end)
report("rt.connections:create_many, per link", t_lmany, N_TXN, "connections:create one by one",
       t_lone)
assert(kept, "the baselines ran")

print()
-- A bar is judged at full size only: small tables stress the collector differently.
local function bar(claim, limit, ratio) -- claim: the bar's text, with %g for the limit
  claim = string.format(claim, limit)
  if scale < 1 then
    print(string.format("bar: %s: not judged at sizes x%g (%.2f; run without NG_BENCH_QUICK "
                        .. "for the bar)", claim, scale, ratio))
  else
    print(string.format("bar: %s: %s (%.2f)", claim, ratio <= limit and "met" or "NOT met", ratio))
  end
end
bar("create at most %gx the plain table", 1.5, r_create)
bar("create at most %gx the plain table (issue 22; where the time goes: docs/performance.md)",
    1.2, r_create)
bar("100,000 creates inside one rt:atomic at most %gx outside", 1.1, r_atomic)
