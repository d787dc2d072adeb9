-- worker.lua: the query script of examples/embed, one copy per worker thread.
--
-- Each worker thread of sim.c owns a Lua state of its own; the host runs this
-- chunk once in it with (runtime, params) -- params = { worker, agents,
-- queries, half } -- and calls the returned function once per tick, while the
-- main thread is moving the agents. It runs `params.queries` queries, checks
-- every answer's invariants (raising if one is broken, which makes the host
-- fail), and returns (queries run, hits).
local rt, params = ...

local RADIUS = 10.0 -- metres, in space L1
local EPS = 1e-4

-- Own LCG, seeded by the worker number: the queries asked are reproducible
-- (the answers depend on where the agents are when each query runs).
local seed = params.worker * 7919
local function rand()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end

local ids = rt.tokens:list(params.agents, 0)
local center = { 0, 0, 0 }
-- `into` makes every query refill the same result table: once it has grown,
-- the loop below allocates nothing, so this thread's GC stays quiet.
local opts = { space = "L1", into = {} }

-- Results are ordered by distance, ties by id, all within the radius.
local function check(hits, what)
  local pd, pid = -1, 0
  for i = 1, #hits do
    local id, d = hits[i][1], hits[i][2]
    if d > RADIUS + EPS then
      error(("%s: hit %d at distance %g is outside radius %g"):format(what, id, d, RADIUS))
    end
    if d < pd or (d == pd and id <= pid) then
      error(("%s: hit %d (distance %g) is out of order"):format(what, id, d))
    end
    pd, pid = d, id
  end
  return #hits
end

return function(tick)
  local hits = 0
  for q = 1, params.queries do
    if q % 2 == 1 then
      center[1] = (rand() * 2 - 1) * params.half
      center[2] = (rand() * 2 - 1) * params.half
      hits = hits + check(rt.grid:range_query(center, RADIUS, opts), "range_query")
    else
      local id = ids[math.floor(rand() * #ids) + 1]
      local near = rt.grid:find_neighbors(id, RADIUS, opts)
      for i = 1, #near do
        if near[i][1] == id then error("find_neighbors returned the token itself") end
      end
      hits = hits + check(near, "find_neighbors")
    end
  end
  -- Agents are never deleted and never leave the world.
  local tok = rt.tokens:get(ids[tick % #ids + 1])
  if tok == nil then error("tick " .. tick .. ": an agent vanished") end
  local x, y = tok:coords("L1")
  if math.abs(x) > params.half + EPS or math.abs(y) > params.half + EPS then
    error(("agent %d left the world: (%g, %g)"):format(ids[tick % #ids + 1], x, y))
  end
  return params.queries, hits
end
