-- brain.lua: the "brain" of examples/embed, run each tick on the host's main Lua state.
--
-- The host (sim.c) runs this chunk once with (runtime, params) -- the runtime
-- pushed with ng_lua_push_runtime, params = { agents, queries, half, worker = 0 } --
-- and then calls the function it returns once per tick, after C has moved the
-- agents. The function links each "leader" to its neighbours with short-lived
-- Near connections and raises the leader's weight; it returns how many links it
-- made and how many expired. Everything here is deterministic: it only reads
-- what the (deterministic) C motion wrote.
local rt, params = ...

local LINK_RADIUS = 6.0 -- metres, in space L1
local LINK_TTL = 4 -- ticks a link lives
local LEADERS = 8 -- agents that look around each tick
local MAX_LINKS = 12 -- per leader per tick

local ids = rt.tokens:list(params.agents, 0) -- ascending ids: the host's agent order
assert(#ids == params.agents, "the brain expected " .. params.agents .. " agents")

local queue = {} -- links in creation order: { cid, key, born }
local head, tail = 1, 0
local linked = {} -- key (from * 2^24 + to) -> true while a Near link exists
local near_opts = { space = "L1", limit = MAX_LINKS, into = {} } -- refilled, not reallocated

return function(tick)
  local made, dropped = 0, 0
  -- Expire old links first, oldest first.
  while head <= tail and tick - queue[head][3] >= LINK_TTL do
    local link = queue[head]
    if rt.connections:delete(link[1]) then dropped = dropped + 1 end
    linked[link[2]] = nil
    queue[head] = nil
    head = head + 1
  end
  for k = 1, LEADERS do
    local leader = ids[(tick * 131 + k * 977) % #ids + 1]
    for _, hit in ipairs(rt.grid:find_neighbors(leader, LINK_RADIUS, near_opts)) do
      local other = hit[1]
      local key = leader * 16777216 + other
      if not linked[key] then
        local cid = rt.connections:create(leader, other, {
          type = "Near",
          preferred_distance = math.max(hit[2], 0.01),
        })
        linked[key] = true
        tail = tail + 1
        queue[tail] = { cid, key, tick }
        made = made + 1
      end
    end
    local tok = rt.tokens:get(leader)
    tok.weight = math.min(100, tok.weight + 0.5)
  end
  return made, dropped
end
